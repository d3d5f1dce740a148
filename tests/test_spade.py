"""SPADE: networks (shapes, parameter counts, fast label conv), losses and the training step, sampling."""
import copy

import pytest
import torch
import torch.nn.functional as F

from ganzoo.config import ConfigError
from ganzoo.engine.context import StepContext
from ganzoo.layers.onehot import OneHotConv2d, compact_labels
from ganzoo.nets.spade import latent_size, reparameterize
from ganzoo.registry import DISCRIMINATORS, ENCODERS, GENERATORS, MODELS

torch.set_num_threads(1)


def count(module):
    return sum(p.numel() for p in module.parameters())


def tiny_model(**kw):
    cfg = {"type": "spade", "label_nc": 4, "contain_dontcare_label": True, "crop_size": 32,
           "generator": {"type": "spade_generator", "ngf": 4, "norm": {"type": "spade", "param_free": "batch",
                                                                       "hidden": 8}},
           "discriminator": {"type": "multiscale_patchgan", "ndf": 4, "n_layers": 3}, "lambda_vgg": 0.0}
    cfg.update(kw)
    return MODELS.build(cfg)


def tiny_batch(n=2, size=32, classes=5):
    torch.manual_seed(1)
    return {"image": torch.rand(n, 3, size, size) * 2 - 1, "label": torch.randint(0, classes, (n, 1, size, size))}


def context(model):
    from ganzoo.engine.optim import build_optimizers
    return StepContext(build_optimizers(model.param_groups()))


# ---------------------------------------------------------------------------------------- networks

@pytest.mark.parametrize("mode,crop,aspect,latent,out", [("normal", 64, 1.0, (2, 2), (64, 64)),
                                                         ("more", 128, 2.0, (1, 2), (64, 128)),
                                                         ("most", 128, 1.0, (1, 1), (128, 128))])
def test_generator_shapes(mode, crop, aspect, latent, out):
    G = GENERATORS.build({"type": "spade_generator", "label_nc": 6, "ngf": 2, "num_upsampling_layers": mode,
                          "crop_size": crop, "aspect_ratio": aspect,
                          "norm": {"type": "spade", "param_free": "batch", "hidden": 4}})
    assert (G.sh, G.sw) == latent and G.output_size == out
    seg = F.one_hot(torch.randint(0, 6, (2,) + out), 6).permute(0, 3, 1, 2).float()
    y = G(seg)
    assert y.shape == (2, 3) + out and y.abs().max() <= 1
    assert hasattr(G, "up_4") == (mode == "most")
    with pytest.raises(ValueError, match="num_upsampling_layers"):
        latent_size(256, 1.0, "many")


def test_parameter_counts_match_official_table(monkeypatch):
    # notes §2.8: ADE20K G 96.5 M, with VAE 111.9 M, D 5.8 M, E 10.5 M; COCO 97.5 / 112.6 / 5.9;
    # Cityscapes 93.05 M (the notes round it to 93.1) / 101.1 M. Built on the meta device, without the
    # spectral-norm wrapper (it adds buffers, no parameters), so the count costs no memory and no time.
    import ganzoo.layers.conv
    monkeypatch.setattr(ganzoo.layers.conv, "_maybe_spectral", lambda module, spectral_norm: module)

    def build(registry, **kw):
        with torch.device("meta"):
            return count(registry.build({"init": None, **kw}))

    def g(nc, **kw):
        return build(GENERATORS, type="spade_generator", label_nc=nc, **kw)
    assert g(151) == 96492483 and round(g(151) / 1e6, 1) == 96.5
    assert round(g(151, z_dim=256) / 1e6, 1) == 111.9
    assert round(g(184) / 1e6, 1) == 97.5 and round(g(184, z_dim=256) / 1e6, 1) == 112.6
    city = dict(num_upsampling_layers="more", crop_size=512, aspect_ratio=2.0)
    assert g(36, **city) == 93048003 and round(g(36, z_dim=256, **city) / 1e6, 1) == 101.1
    assert round(build(DISCRIMINATORS, type="multiscale_patchgan", input_nc=154) / 1e6, 1) == 5.8
    assert round(build(DISCRIMINATORS, type="multiscale_patchgan", input_nc=187) / 1e6, 1) == 5.9
    assert round(build(ENCODERS, type="spade_vae_encoder") / 1e6, 1) == 10.5


def test_encoder_any_z_dim_and_discriminator_outputs():
    E = ENCODERS.build({"type": "spade_vae_encoder", "z_dim": 7, "ndf": 2, "input_size": 32})
    mu, logvar = E(torch.randn(3, 3, 50, 40))
    assert mu.shape == logvar.shape == (3, 7)
    D = DISCRIMINATORS.build({"type": "multiscale_patchgan", "input_nc": 5, "ndf": 4, "num_d": 2, "n_layers": 4})
    out = D(torch.randn(2, 5, 64, 64))
    assert len(out) == 2 and all(len(feats) == 5 for feats in out)
    assert out[0][-1].shape[1] == 1 and [f.shape[1] for f in out[0]] == [4, 8, 16, 32, 1]
    assert out[0][0].shape[-1] == 33 and out[1][0].shape[-1] == 17  # k4 s2 p2; second scale avg-pooled


def test_multiscale_discriminator_max_channels_from_the_model_config():
    model = tiny_model(discriminator={"type": "multiscale_patchgan", "ndf": 4, "n_layers": 4, "max_channels": 8})
    out = model.D(torch.randn(1, 5 + 3, 32, 32))
    assert [[f.shape[1] for f in feats] for feats in out] == [[4, 8, 8, 8, 1]] * 2  # 4, 8, 16 -> 8, 32 -> 8


def test_vae_generator_needs_z():
    G = GENERATORS.build({"type": "spade_generator", "label_nc": 3, "ngf": 2, "crop_size": 32, "z_dim": 4,
                          "norm": {"type": "spade", "hidden": 4}})
    seg = torch.zeros(1, 3, 32, 32)
    assert G(seg, torch.randn(1, 4)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="pass z"):
        G(seg)


def test_one_hot_conv_equals_dense_conv_with_gradients():
    torch.manual_seed(0)
    conv = OneHotConv2d(7 + 1, 5, 3, num_classes=7)
    label = torch.randint(0, 7, (2, 9, 11))
    edge = (torch.rand(2, 1, 9, 11) > 0.7).float()
    dense = torch.cat([F.one_hot(label, 7).permute(0, 3, 1, 2).float(), edge], 1)
    ref = conv(dense)
    grad = torch.randn_like(ref)
    ref.backward(grad)
    ref_grads = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    out = conv(compact_labels(label.unsqueeze(1), edge))
    out.backward(grad)
    assert torch.allclose(out, ref, atol=1e-5)
    for p, g in zip(conv.parameters(), ref_grads):
        assert torch.allclose(p.grad, g, atol=1e-4)


def test_fast_label_conv_generator_matches_dense():
    torch.manual_seed(0)
    kw = {"type": "spade_generator", "label_nc": 5, "ngf": 2, "crop_size": 32,
          "norm": {"type": "spade", "param_free": "batch", "hidden": 4}}
    G = GENERATORS.build(kw)
    fast = GENERATORS.build({**kw, "one_hot_classes": 5})
    state = {k: v.clone() for k, v in G.state_dict().items()}
    fast.load_state_dict(state)  # same keys and shapes
    label = torch.randint(0, 5, (2, 1, 32, 32))
    dense = F.one_hot(label[:, 0], 5).permute(0, 3, 1, 2).float()
    out = fast(compact_labels(label))
    assert torch.allclose(G(dense), out, atol=1e-5)
    fast.load_state_dict(state)  # (a train-mode forward advances the spectral-norm power iteration)
    assert torch.allclose(fast(dense), out, atol=1e-5)


# ---------------------------------------------------------------------------------------- model

def test_losses_on_fixed_tensors():
    model = tiny_model()
    # hinge on fixed predictions: D = mean(relu(1 - real)) + mean(relu(1 + fake)), averaged over scales
    real = [[torch.tensor([0.5, 2.0])], [torch.tensor([-1.0, 0.0])]]
    fake = [[torch.tensor([-0.5, 1.0])], [torch.tensor([0.0, -2.0])]]
    d = model.gan_loss.d_loss(real, fake)
    expected = ((0.25 + 1.25) + (1.5 + 0.5)) / 2
    assert torch.isclose(d, torch.tensor(expected))
    assert torch.isclose(model.gan_loss.g_loss(fake), torch.tensor(-(0.25 - 1.0) / 2))
    # feature matching: sum over intermediate layers of L1 means, / num_D (the last entry is ignored)
    f_fake = [[torch.zeros(2), torch.ones(2), torch.zeros(1)], [torch.full((2,), 2.0), torch.zeros(1)]]
    f_real = [[torch.ones(2), torch.ones(2), torch.ones(1)], [torch.zeros(2), torch.ones(1)]]
    assert torch.isclose(model.feature_matching(f_fake, f_real), torch.tensor((1.0 + 0.0 + 2.0) / 2))
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    kld = -0.5 * ((1 + 0 - 1 - 1) + (1 + 1 - 0 - torch.e))
    assert torch.isclose(model.kld(mu, logvar), torch.tensor(kld))


def test_partial_vgg_section_keeps_the_official_input_range():
    """``model.vgg: {weights: ...}`` alone keeps ``normalize_input: false``: VGG19 sees [-1, 1] images."""
    model = tiny_model(lambda_vgg=10.0, vgg={"weights": "random"})
    assert model.cfg["vgg"] == {"weights": "random", "normalize_input": False}
    with pytest.warns(UserWarning, match="random weights"):
        vgg = model.vgg(torch.device("cpu"))
    fake, real = tiny_batch()["image"], tiny_batch(classes=3)["image"].flip(0)
    expected, x, y = 0.0, fake, real
    for weight, block in zip(vgg.layer_weights, vgg.slices):  # the slices fed the raw [-1, 1] images
        x, y = block(x), block(y)
        expected += weight * (x - y).abs().mean()
    torch.testing.assert_close(model.vgg_loss(fake, real), expected)


def test_train_step_updates_and_one_generator_forward(monkeypatch):
    model = tiny_model()
    ctx = context(model)
    batch = tiny_batch()
    calls = {"G": 0, "D": 0}
    for name in calls:
        net = getattr(model, name)
        net.register_forward_hook(lambda *a, name=name: calls.__setitem__(name, calls[name] + 1))
    before_g = [p.detach().clone() for p in model.G.parameters()]
    before_d = [p.detach().clone() for p in model.D.parameters()]
    logs = model.train_step(batch, ctx)
    assert calls == {"G": 1, "D": 2}  # one G forward; fake+real as one batch in each of the two D passes
    assert set(logs) == {"g_gan", "g_feat", "g_loss", "d_loss"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before_g, model.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, model.D.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert torch.isclose(logs["g_loss"], logs["g_gan"] + logs["g_feat"])


def official_iteration(model, batch, optimizers):
    """The NVlabs trainer's iteration written out (pix2pix_trainer: run_generator_one_step, then
    run_discriminator_one_step on a fake regenerated under no_grad), on ganzoo's networks and losses."""
    seg, g_seg = model.condition(batch, torch.device("cpu"))
    real = batch["image"]

    def generate():
        mu, logvar = model.E(real)
        return model.G(g_seg, reparameterize(mu, logvar)), mu, logvar

    optimizers["G"].zero_grad()
    fake, mu, logvar = generate()
    pred_fake, pred_real = model.discriminate(seg, fake, real)
    g_loss = (model.gan_loss.g_loss(pred_fake) + model.feature_matching(pred_fake, pred_real) * 10.0
              + model.kld(mu, logvar) * 0.05)
    g_loss.backward()
    optimizers["G"].step()
    optimizers["D"].zero_grad()
    with torch.no_grad():
        fake = generate()[0]
    pred_fake, pred_real = model.discriminate(seg, fake, real)
    model.gan_loss.d_loss(pred_real, pred_fake).backward()
    optimizers["D"].step()


def test_official_step_order_equals_the_official_trainer():
    """``step_order: official`` = G step then D step on a regenerated fake: parameters, Adam updates,
    batch-norm statistics and spectral-norm vectors (they move twice per iteration) as the official loop."""
    from ganzoo.engine.optim import build_optimizers
    torch.manual_seed(0)
    model = tiny_model(step_order="official",
                       encoder={"type": "spade_vae_encoder", "z_dim": 6, "ndf": 2, "input_size": 16})
    reference = copy.deepcopy(model)
    ctx, optimizers = context(model), build_optimizers(reference.param_groups())
    for seed in (1, 2):
        batch = tiny_batch()
        torch.manual_seed(seed)
        model.train_step(batch, ctx)
        torch.manual_seed(seed)
        official_iteration(reference, batch, optimizers)
    assert model.G.head_0.block_0.norm.param_free_norm.num_batches_tracked == 4  # 2 G forwards x 2 iterations
    got, expected = model.state_dict(), reference.state_dict()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], msg=key)
    with pytest.raises(ConfigError, match="step_order"):
        tiny_model(step_order="g_first")


def test_g_step_gradients_equal_reference_formulation():
    """The G update uses exactly the gradient of hinge_G + 10 FM (reference loss) w.r.t. G."""
    torch.manual_seed(0)
    model = tiny_model().eval()  # eval: spectral norm and BN statistics stay fixed between the passes
    batch = tiny_batch()
    seg, g_seg = model.condition(batch, torch.device("cpu"))
    fake = model.G(g_seg)
    pred_fake, pred_real = model.discriminate(seg, fake, batch["image"])
    loss = model.gan_loss.g_loss(pred_fake) + 10 * model.feature_matching(pred_fake, pred_real)
    params = list(model.G.parameters())
    expected = torch.autograd.grad(loss, params)
    # reference layout: D on fake and real separately
    f = model.D(torch.cat([seg, model.G(g_seg)], 1))
    r = model.D(torch.cat([seg, batch["image"]], 1))
    loss2 = model.gan_loss.g_loss(f) + 10 * model.feature_matching(f, [[t.detach() for t in x] for x in r])
    got = torch.autograd.grad(loss2, params)
    for a, b in zip(expected, got):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_vae_train_step_and_sampling():
    model = tiny_model(encoder={"type": "spade_vae_encoder", "z_dim": 6, "ndf": 2, "input_size": 16})
    ctx = context(model)
    batch = tiny_batch()
    logs = model.train_step(batch, ctx)
    assert "kld" in logs and logs["kld"] >= 0
    model.eval()
    a, b = model.sample(batch, seed=3), model.sample(batch, seed=3)
    c = model.sample(batch, seed=4)
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    styled = model.sample({**batch, "style": batch["image"][:1]}, seed=3)
    assert styled.shape == a.shape and not torch.equal(styled, a)


def test_deterministic_sampling_without_vae_and_config_errors():
    model = tiny_model().eval()
    batch = tiny_batch()
    assert torch.equal(model.sample(batch, seed=1), model.sample(batch, seed=2))
    assert model.sample(batch, n=1).shape[0] == 1
    with pytest.raises(ConfigError, match="lambda_fm"):
        tiny_model(lambda_fm=1)
    with pytest.raises(ConfigError, match="label_nc"):
        tiny_model(generator={"type": "spade_generator", "label_nc": 3})

    class Data:
        num_classes, use_instance = 9, False
    with pytest.raises(ConfigError, match="num_classes=9"):
        model.prepare(Data())


def test_instance_edges_in_condition():
    model = tiny_model(use_instance=True)
    batch = tiny_batch(n=1)
    batch["instance"] = torch.zeros(1, 1, 32, 32, dtype=torch.long)
    batch["instance"][..., 10:20, 10:20] = 3
    seg, g_seg = model.condition(batch, torch.device("cpu"))
    assert seg.shape[1] == 6 and g_seg.shape[1] == 2
    edges = seg[0, 5]
    assert edges[10, 12] == 1 and edges[9, 12] == 1 and edges[15, 15] == 0 and edges.sum() == 36 + 40  # inner ring + outer 4-neighbours
    with pytest.raises(ValueError, match="instance"):
        model.condition(tiny_batch(n=1), torch.device("cpu"))


@pytest.mark.parametrize("precision,channels_last", [("bf16", True), ("fp16", False)])
def test_precision_and_channels_last_switches(precision, channels_last):
    model = tiny_model(encoder={"type": "spade_vae_encoder", "z_dim": 6, "ndf": 2, "input_size": 16})
    batch = tiny_batch()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    from ganzoo.engine.optim import build_optimizers
    ctx = StepContext(build_optimizers(model.param_groups()), precision=precision)
    logs = model.train_step(batch, ctx)
    assert all(torch.isfinite(v) for v in logs.values())
