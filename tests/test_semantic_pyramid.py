"""Semantic Pyramid: masks, losses, networks, training steps, state, applications, CLI, tools/train.py."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.apps import semantic_pyramid as apps
from ganzoo.backbones.vgg16_places365 import VGG16Places365
from ganzoo.engine.context import StepContext
from ganzoo.models.semantic_pyramid import masked_l1, region_masks
from ganzoo.nets.semantic_pyramid import SAGANProjectionDiscriminator, SemanticPyramidGenerator
from ganzoo.registry import DISCRIMINATORS, MODELS

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*backbone.weights=random", "ignore:.*category folders")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"type": "semantic_pyramid", "image_size": 64, "channel_factor": 16, "num_classes": 3,
        "backbone": {"type": "resnet18_places365", "weights": "random"}}
SEED_VARIANT = {**TINY, "num_classes": 0, "levels": ["layer1", "layer2", "layer3", "layer4"],
                "generator": {"type": "semantic_pyramid", "gen_type": "res"},
                "discriminator": {"type": "dcgan_critic", "norm": "instance"},
                "gan_loss": "wgan", "gradient_penalty": 10.0, "d_steps": 2, "diversity": 1.0,
                "masks": {"train1_prob": 0.6}}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS.build(TINY)


def _fake_features(model, n):
    return [torch.rand(n, c, 64 // s, 64 // s) if s else torch.rand(n, c) for _, c, s in model.level_specs]


def _ctx(model, precision="fp32"):
    opts = {k: torch.optim.Adam(v["params"], lr=1e-3, betas=v["betas"]) for k, v in model.param_groups().items()}
    return StepContext(opts, precision=precision)


# ---- masks --------------------------------------------------------------------------------------
def test_mask_statistics(model):
    torch.manual_seed(1)
    n = 4000
    feats = _fake_features(model, n)
    selected = torch.multinomial(model.level_probs, n, replacement=True)
    masks = model.sample_masks(feats, selected)
    counts = torch.bincount(selected, minlength=7).float() / n
    assert torch.allclose(counts, torch.full((7,), 1 / 7), atol=0.02)      # uniform level choice
    is_spatial = torch.zeros(n, dtype=torch.bool)
    for level, (mask, (_, _, stride)) in enumerate(zip(masks, model.level_specs)):
        flat = mask.reshape(n, -1)
        assert ((flat == 0) | (flat == 1)).all()
        assert (flat[selected == level] == 1).all()                     # selected: fully on
        assert (flat[selected < level] == 0).all()                      # deeper than selected: off
        if stride is not None and model.level_specs[level + 1][2] is not None:   # regions below a selected map
            partial = (flat[selected == level + 1].mean(1) > 0) & (flat[selected == level + 1].mean(1) < 1)
            assert partial.any()
        shallower = flat[selected > level]
        if stride is not None:
            is_spatial |= (flat.sum(1) > 0) & (selected > level)
        else:
            assert (shallower == 0).all()                               # vector levels: never regions
    # region masks on p_spatial = 0.3 of the samples whose selected level is a map above the shallowest
    eligible = (selected > 0) & (selected < 5)
    frac = is_spatial[eligible].float().mean()
    assert abs(frac - 0.3) < 0.04 and not is_spatial[~eligible].any()
    # the region is the same at every level: the coarse mask is the fine one, subsampled
    two = torch.nonzero(is_spatial & (selected == 4)).flatten()[:50]
    fine, coarse = masks[0][two], masks[2][two]
    agree = (torch.nn.functional.avg_pool2d(fine, 4).round() == coarse).float().mean()
    assert agree > 0.9


def test_region_masks_shapes_and_area():
    torch.manual_seed(0)
    rect, = region_masks(2000, [(32, 32)], shapes=["rect"], region="inside")
    area = rect.mean((1, 2, 3))
    # sides 25-75 %: area at most 0.75^2, at least a quarter of 0.25^2 (centred in a corner)
    assert 0.25 ** 2 / 4 - 0.01 < area.min() and area.max() < 0.75 ** 2 + 0.01 and 0.1 < area.mean() < 0.3
    outside, = region_masks(2000, [(32, 32)], shapes=["rect"], region="outside")
    assert outside.mean() > 0.7
    blob, = region_masks(500, [(32, 32)], shapes=["blob"], region="inside")
    assert ((blob == 0) | (blob == 1)).all() and 0 < blob.mean() < 0.6


def test_fixed_level_and_train1_prob():
    m = MODELS.build({**TINY, "masks": {"fixed_level": "layer2"}})
    masks = m.sample_masks(_fake_features(m, 200))
    assert (masks[2] == 1).all() and all((masks[i] == 0).all() for i in (3, 4, 5, 6))
    seed = MODELS.build(SEED_VARIANT)
    assert seed.p_spatial == pytest.approx(0.4) and seed.region == "outside" and seed.shapes == ["rect"]
    assert seed.used == [1, 2, 3, 4] and seed.depth == 5
    sel = torch.multinomial(seed.level_probs, 1000, replacement=True)
    assert set(sel.tolist()) == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="fixed_level 'conv9'"):
        MODELS.build({**TINY, "masks": {"fixed_level": "conv9"}})


# ---- losses -------------------------------------------------------------------------------------
def test_masked_l1_against_numpy():
    rng = np.random.default_rng(0)
    fake, real = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    mask = np.zeros((2, 1, 4, 4))
    mask[0, 0, :2, :2] = 1
    # pooled: 2x2 max pool of features and mask, then mean over channels and the on-cells
    pool = lambda a: a.reshape(*a.shape[:2], 2, 2, 2, 2).max(axis=(3, 5))
    pf, pr, pm = pool(fake), pool(real), pool(mask)
    expected = (np.abs(pf - pr) * pm).sum() / (pm.sum() * 3)
    got = masked_l1(*(torch.tensor(a, dtype=torch.float32) for a in (fake, real, mask)))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    unpooled = (np.abs(fake - real) * mask).sum() / (mask.sum() * 3)
    got = masked_l1(*(torch.tensor(a, dtype=torch.float32) for a in (fake, real, mask)), pool=False)
    assert got.item() == pytest.approx(unpooled, rel=1e-5)
    # vectors: mask per sample; nothing on -> 0
    v1, v2 = torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert masked_l1(v1, v2, torch.tensor([0.0, 1.0])).item() == pytest.approx(3.5)
    assert masked_l1(v1, v2, torch.zeros(2)).item() == pytest.approx(0, abs=1e-7)


def test_projection_discriminator_sums_projection():
    torch.manual_seed(0)
    d = SAGANProjectionDiscriminator(image_size=32, channel_factor=16, num_classes=5).eval()
    x = torch.randn(3, 3, 32, 32)
    y = torch.tensor([0, 3, 4])
    out = d(x, y)
    assert out.shape == (3,)
    h = {}
    d.act.register_forward_hook(lambda mod, inp, o: h.update(h=o.sum((2, 3))))
    d(x, y)
    with torch.no_grad():
        expected = d.linear(h["h"]).squeeze(1) + (d.embed(y) * h["h"]).sum(1)
    assert torch.allclose(out, expected, atol=1e-5)
    # the class only enters through the summed projection
    y2 = torch.tensor([1, 1, 1])
    assert torch.allclose(d(x, y) - d(x, y2), ((d.embed(y) - d.embed(y2)) * h["h"]).sum(1).detach(), atol=1e-4)
    unconditional = DISCRIMINATORS.build({"type": "sagan_projection", "image_size": 32, "channel_factor": 16})
    assert unconditional(x).shape == (3,)


@pytest.mark.parametrize("norm", ["batch", "instance", "layer"])
def test_dcgan_critic_norms(norm):
    d = DISCRIMINATORS.build({"type": "dcgan_critic", "image_size": 64, "channel_factor": 8, "norm": norm})
    assert d(torch.randn(2, 3, 64, 64)).shape == (2,)


def test_generator_ignores_masked_out_levels(model):
    g = model.G.eval()
    torch.manual_seed(0)
    feats = _fake_features(model, 2)
    masks = model.level_masks(feats, "layer3")
    z, y = torch.randn(2, model.z_dim), torch.tensor([0, 2])
    with torch.no_grad():
        out = g(z, feats, masks, y)
        changed = [f.clone() for f in feats]
        changed[1] += 5
        changed[6] += 5                                   # off levels: no effect
        assert torch.allclose(g(z, changed, masks, y), out, atol=1e-6)
        changed[3] += 5                                   # the selected level: changes the image
        assert not torch.allclose(g(z, changed, masks, y), out, atol=1e-3)
        import copy
        g2 = copy.deepcopy(g)                             # class-conditional BN: per-class scale/shift
        for m in g2.modules():
            if type(m).__name__ == "ClassConditionalBatchNorm":
                m.embed.weight[1] += 0.5
        assert torch.allclose(g2(z, feats, masks, torch.tensor([0, 2])), out, atol=1e-6)
        assert not torch.allclose(g2(z, feats, masks, torch.tensor([1, 1])), out, atol=1e-4)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    attention = [m for m in g.modules() if type(m).__name__ == "SelfAttention"]
    assert attention and all(a.gamma.item() == 0 for a in attention)
    g.train()


@pytest.mark.parametrize("gen_type", ["sagan", "res", "default"])
def test_generator_variants(gen_type):
    g = SemanticPyramidGenerator(VGG16Places365.levels, image_size=128, channel_factor=16, gen_type=gen_type)
    feats = [torch.rand(2, c, 128 // s, 128 // s) if s else torch.rand(2, c) for _, c, s in g.levels]
    masks = [torch.ones(2, 1, *f.shape[-2:]) if f.dim() == 4 else torch.ones(2) for f in feats]
    assert g(torch.randn(2, 128), feats, masks).shape == (2, 3, 128, 128)
    with pytest.raises(ValueError, match="image_size 100"):
        SemanticPyramidGenerator(VGG16Places365.levels, image_size=100)


# ---- training -----------------------------------------------------------------------------------
def test_train_step_sagan_lsgan(model):
    torch.manual_seed(0)
    ctx = _ctx(model)
    batch = {"image": torch.rand(3, 3, 64, 64) * 2 - 1, "class": torch.tensor([0, 1, 2])}
    g_before = [p.detach().clone() for p in model.G.parameters()]
    backbone_before = model.backbone.net.conv1.weight.clone()
    logs = model.train_step(batch, ctx)
    assert set(logs) == {"d_loss", "g_adv", "reconstruction", "diversity", "g_loss"}
    assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.G.parameters()))
    assert torch.equal(model.backbone.net.conv1.weight, backbone_before)
    assert all(p.requires_grad for p in model.D.parameters())       # re-enabled after the G step


def test_train_step_resnet18_seed_wgan_gp():
    torch.manual_seed(0)
    m = MODELS.build(SEED_VARIANT)
    ctx = _ctx(m)
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1}
    g_before = [p.detach().clone() for p in m.G.parameters()]
    ctx.step = 0
    logs = m.train_step(batch, ctx)                                  # d_steps 2: D only
    assert set(logs) == {"d_loss", "gp"} and logs["gp"] > 0
    assert all(torch.equal(a, b) for a, b in zip(g_before, m.G.parameters()))
    ctx.step = 1
    logs = m.train_step(batch, ctx)
    assert {"g_adv", "reconstruction", "diversity"} <= set(logs)


def test_class_missing_is_a_clear_error(model):
    with pytest.raises(ValueError, match="num_classes"):
        model.train_step({"image": torch.zeros(2, 3, 64, 64)}, _ctx(model))


def test_state_dict_round_trip_without_backbone(model):
    state = model.state_dict()
    assert state and not any(k.startswith("backbone.") for k in state)
    fresh = MODELS.build(TINY)
    fresh.load_state_dict(state)
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1, "class": torch.tensor([0, 1])}
    model.eval(), fresh.eval()
    assert torch.allclose(model.sample(batch, seed=3), fresh.sample(batch, seed=3), atol=1e-6)
    model.train()


def test_config_errors():
    from ganzoo.config import ConfigError
    with pytest.raises(ConfigError, match="model.reconstrution"):
        MODELS.build({**TINY, "reconstrution": 1.0})
    with pytest.raises(ValueError, match="model.levels"):
        MODELS.build({**TINY, "levels": ["conv1"]})


# ---- applications -------------------------------------------------------------------------------
@pytest.fixture
def spied(model, monkeypatch):
    """The model in eval mode; ``calls`` records what each app hands to ``model.generate``."""
    calls = []
    generate = model.generate

    def spy(features, masks, z=None, class_ids=None):
        calls.append({"features": features, "masks": masks, "class_ids": class_ids})
        return generate(features, masks, z, class_ids)

    monkeypatch.setattr(model, "generate", spy)
    model.eval()
    yield model, calls
    model.train()


def _only(masks, level):
    """Level index ``level`` fully on, every other level fully off."""
    return all(bool((m == (1 if i == level else 0)).all()) for i, m in enumerate(masks))


def test_generate_uses_only_its_level_and_k_latents(spied):
    model, calls = spied
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    y = torch.tensor([0, 1])
    out = apps.generate(model, images, "layer3", k=3, class_ids=y)
    assert out.shape == (6, 3, 64, 64) and not torch.allclose(out[0], out[1])  # k different samples
    torch.testing.assert_close(out, apps.generate(model, images, "layer3", k=3, class_ids=y))  # seeded
    assert _only(calls[0]["masks"], 3) and calls[0]["class_ids"].tolist() == [0, 0, 0, 1, 1, 1]
    for got, want in zip(calls[0]["features"], model.features(images)):
        torch.testing.assert_close(got, want.repeat_interleave(3, 0))
    with pytest.raises(ValueError, match="class ids"):
        apps.generate(model, images, "layer4")


def test_repaint_frees_only_its_region(spied):
    model, calls = spied
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    region = torch.zeros(1, 1, 64, 64)
    region[..., 16:48, 16:48] = 1
    out = apps.repaint(model, images, region, k=2, class_ids=torch.tensor([0, 1]))
    assert out.shape == (4, 3, 64, 64)
    masks = calls[0]["masks"]
    # deepest spatial level (layer4, stride 32) guides everywhere; stem..layer3 only outside the region
    assert (masks[4] == 1).all() and (masks[5] == 0).all() and (masks[6] == 0).all()
    for level, stride in enumerate((2, 4, 8, 16)):
        expected = torch.ones(4, 1, 64 // stride, 64 // stride)
        expected[..., 16 // stride:48 // stride, 16 // stride:48 // stride] = 0
        assert torch.equal(masks[level], expected), level
    # a region over the whole image leaves only the deep level
    apps.repaint(model, images[:1], torch.ones(1, 1, 64, 64), k=1, class_ids=torch.tensor([0]))
    assert _only(calls[1]["masks"], 4)


def test_compose_regenerates_the_pasted_composite(spied):
    model, calls = spied
    torch.manual_seed(1)
    background, obj = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 32:, :20] = 1
    composite = background.clone()
    composite[..., 32:, :20] = obj[..., 32:, :20]
    assert torch.equal(apps.paste(background, obj, mask), composite)
    out = apps.compose(model, background, obj, mask, k=1, class_ids=torch.tensor([0, 1]))
    assert out.shape == (2, 3, 64, 64) and _only(calls[0]["masks"], 4)
    for got, want in zip(calls[0]["features"], model.features(composite)):
        torch.testing.assert_close(got, want)


def test_relabel_generates_the_new_class(spied):
    model, calls = spied
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    relabelled = apps.relabel(model, images, 2, k=2)
    assert relabelled.shape == (4, 3, 64, 64) and calls[0]["class_ids"].tolist() == [2, 2, 2, 2]
    assert _only(calls[0]["masks"], 6)  # default: the deepest used level


def test_colorize_and_sketch_use_the_gray_image_and_their_levels(spied):
    model, calls = spied
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    luma = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    gray = apps.to_gray(images)
    for c in range(3):
        torch.testing.assert_close(gray[:, c], luma)
    torch.testing.assert_close(apps.to_gray(gray), gray)  # luminance kept
    y = torch.tensor([0, 1])
    assert apps.colorize(model, images, k=1, class_ids=y).shape == (2, 3, 64, 64)
    assert _only(calls[0]["masks"], 1)  # the second-shallowest used level
    for got, want in zip(calls[0]["features"], model.features(gray)):
        torch.testing.assert_close(got, want)
    assert apps.sketch_to_photo(model, images, k=1, class_ids=y).shape == (2, 3, 64, 64)
    assert _only(calls[1]["masks"], 3)  # the middle used level (7 used // 2)
    for got, want in zip(calls[1]["features"], model.features(images)):
        torch.testing.assert_close(got, want)


def test_per_level_fid(model):
    torch.manual_seed(0)
    data = [{"image": torch.rand(3, 64, 64) * 2 - 1, "class": torch.tensor(i % 3)} for i in range(6)]
    model.eval()
    scores = apps.per_level_fid(model, data, num_images=6, batch_size=3, dims=64, fid_weights="random",
                                levels=["stem", "layer4"], check=False)
    model.train()
    assert set(scores) == {"stem", "layer4"} and all(np.isfinite(v) and v >= 0 for v in scores.values())


# ---- tools ----------------------------------------------------------------------------------------
def _png(path, size=64, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_cli_apps_from_checkpoint(model, tmp_path):
    ckpt = tmp_path / "model.pt"
    torch.save({"format": 1, "model": model.state_dict(), "config": {"model": dict(TINY)}}, ckpt)
    image, other = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", seed=1)
    from ganzoo.cli.semantic_pyramid import main
    runs = [["generate", "--level", "layer3", "--class", "1"], ["repaint", "--box", "0.2,0.2,0.7,0.7", "--class", "0"],
            ["compose", "--object", other, "--box", "0.5,0.5,1,1", "--class", "2"], ["relabel", "--class", "2"],
            ["colorize", "--class", "0"], ["sketch", "--class", "0"]]
    for extra in runs:
        out = tmp_path / f"{extra[0]}.png"
        assert main([extra[0], str(ckpt), "--image", image, "-k", "2", "-o", str(out)] + extra[1:]) == 0
        assert Image.open(out).size == (2 + 3 * 66, 2 + 66)           # input + 2 samples, padded grid
    assert main(["relabel", str(ckpt), "--image", image]) == 2           # needs --class
    assert main(["generate", str(ckpt), "--image", str(tmp_path / "none.png")]) == 2


def test_tools_train_tiny_config(tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_places365 import write_easy
    write_easy(str(tmp_path / "places"), per_class=2, size=64)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"""
model:
  type: semantic_pyramid
  image_size: 64
  num_classes: 3
  channel_factor: 16
  backbone: {{type: resnet18_places365, weights: random}}
data: {{type: places365, root: {tmp_path / 'places'}, image_size: 64, num_workers: 0}}
train: {{steps: 2, batch_size: 2}}
run: {{dir: {tmp_path / 'run'}, log_every: 1, sample_every: 2, sample_count: 2, ckpt_every: 2, progress: false}}
""")
    from ganzoo.cli.train import main as train
    threads = torch.get_num_threads()
    assert train([str(config)]) == 0
    torch.set_num_threads(threads)
    assert os.listdir(tmp_path / "run" / "checkpoints")
    from ganzoo.cli.semantic_pyramid import main
    image = _png(tmp_path / "a.png")
    assert main(["generate", str(tmp_path / "run"), "--image", image, "--class", "1", "-k", "1",
                 "-o", str(tmp_path / "g.png")]) == 0
    fid = ["fid", str(tmp_path / "run"), "--dims", "64", "--fid-weights", "random", "--num-images", "4",
           "--batch-size", "2", "-o", str(tmp_path / "fid.json")]
    assert main(fid) == 2                                              # 4 images < 64 dims: refused
    assert main(fid + ["--allow-few"]) == 0
    import json
    assert set(json.load(open(tmp_path / "fid.json"))) == {"stem", "layer1", "layer2", "layer3", "layer4", "pool",
                                                            "logits"}


def test_default_config_missing_files_one_line(tmp_path, capfd, monkeypatch):
    from ganzoo.engine.options import load_config
    cfg = load_config(os.path.join(ROOT, "configs", "semantic_pyramid.yaml"))
    with pytest.raises(FileNotFoundError, match="vgg16_places365.pth.*convert_vgg16_places365") as err:
        MODELS.build(cfg["model"])
    assert "\n" not in str(err.value)
    from ganzoo.cli.train import main as train
    monkeypatch.chdir(tmp_path)  # the config's relative weights/ and data/ paths do not exist here
    assert train([os.path.join(ROOT, "configs", "semantic_pyramid_resnet18.yaml")]) != 0
    err = capfd.readouterr().err
    assert "resnet18_places365.pth.tar" in err and "Traceback" not in err
