import math

import pytest
import torch
import torch.nn.functional as F

from ganzoo.config import ConfigError
from ganzoo.layers.blocks import ResBlock, SelfAttention
from ganzoo.layers.conv import ConvBlock
from ganzoo.layers.norms import SPADE, build_norm
from ganzoo.losses import gradient_penalty
from ganzoo.registry import LOSSES, NORMS

NORM_INPUT = torch.randn(4, 6, 5, 7)


@pytest.mark.parametrize("name", NORMS.names())
def test_every_norm_builds_and_backprops(name):
    norm = build_norm(name, 6, label_nc=3)
    x = NORM_INPUT.clone().requires_grad_(True)
    conditions = {"spade": torch.randn(4, 3, 10, 14), "class_batch": torch.randint(0, 3, (4,))}
    out = norm(x, conditions[name]) if getattr(norm, "conditional", False) else norm(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all()


def test_layer_norm_normalizes_each_sample_over_chw():
    out = build_norm("layer", 6)(NORM_INPUT)
    flat = out.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(flat.var(1, unbiased=False), torch.ones(4), atol=1e-3)


def test_spade_matches_hand_computation():
    torch.manual_seed(0)
    spade = SPADE(6, label_nc=3, param_free="instance", hidden=8, kernel=3)
    x, seg = torch.randn(2, 6, 4, 4), torch.randn(2, 3, 8, 8)
    seg_small = seg[:, :, ::2, ::2]  # nearest downsampling by 2 picks the top-left pixel of each 2x2
    mean, var = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
    normalized = (x - mean) / torch.sqrt(var + 1e-5)
    hidden = F.relu(F.conv2d(seg_small, spade.shared[0].weight, spade.shared[0].bias, padding=1))
    gamma = F.conv2d(hidden, spade.gamma.weight, spade.gamma.bias, padding=1)
    beta = F.conv2d(hidden, spade.beta.weight, spade.beta.bias, padding=1)
    assert torch.allclose(spade(x, seg), normalized * (1 + gamma) + beta, atol=1e-5)


def test_conditional_norm_needs_label_nc_and_bad_param_free():
    with pytest.raises(ValueError, match="label_nc"):
        build_norm("spade", 4)
    with pytest.raises(ValueError, match="param_free"):
        build_norm({"type": "spade", "param_free": "layer"}, 4, label_nc=2)
    with pytest.raises(ConfigError, match="did you mean 'batch'"):
        build_norm("batchh", 4)


def test_only_sync_batch_norms_become_sync_batch_norm():
    from torch import nn

    from ganzoo.engine.distributed import convert_sync_batch_norms
    net = nn.Sequential(build_norm("batch", 4), build_norm("sync_batch", 4),
                        SPADE(4, label_nc=3, param_free="sync_batch"), SPADE(4, label_nc=3, param_free="batch"))
    net[1].running_mean.fill_(0.5)
    weight = net[1].weight
    net = convert_sync_batch_norms(net)
    assert [type(m) is nn.SyncBatchNorm for m in (net[0], net[1], net[2].param_free_norm, net[3].param_free_norm)] \
        == [False, True, True, False]
    assert net[1].weight is weight and torch.equal(net[1].running_mean, torch.full((4,), 0.5))
    assert type(convert_sync_batch_norms(build_norm("sync_batch", 4))) is nn.SyncBatchNorm


def test_spectral_norm_follows_the_official_power_iteration_order():
    """Same state -> same training-mode forward, gradient and u/v as ``torch.nn.utils.spectral_norm``
    (the official SPADE code's), with the parametrization state-dict layout; eval mode leaves u/v alone."""
    from torch import nn
    from torch.nn.utils import parametrizations

    from ganzoo.layers.conv import conv2d
    torch.manual_seed(0)
    official = torch.nn.utils.spectral_norm(nn.Conv2d(4, 6, 3, padding=1))
    ours = conv2d(4, 6, 3, spectral_norm=True)
    assert ours.state_dict().keys() == parametrizations.spectral_norm(nn.Conv2d(4, 6, 3)).state_dict().keys()
    state = official.state_dict()
    ours.load_state_dict({"bias": state["bias"], "parametrizations.weight.original": state["weight_orig"],
                          "parametrizations.weight.0._u": state["weight_u"],
                          "parametrizations.weight.0._v": state["weight_v"]})
    sn = ours.parametrizations.weight[0]
    x = torch.randn(2, 4, 5, 5)
    for _ in range(2):
        out, expected = ours(x), official(x)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(sn._u, official.weight_u)
        torch.testing.assert_close(sn._v, official.weight_v)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(ours.parametrizations.weight.original.grad, official.weight_orig.grad)
    ours.eval(), official.eval()
    u = sn._u.clone()
    torch.testing.assert_close(ours(x), official(x))
    assert torch.equal(sn._u, u)


def test_spade_resblock_shapes_and_learned_shortcut():
    block = ResBlock(8, 4, norm={"type": "spade", "param_free": "batch", "hidden": 16}, spectral_norm=True, label_nc=3)
    assert block.learned_shortcut and block.conv_s.bias is None
    out = block(torch.randn(2, 8, 8, 8), torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4, 8, 8)
    same = ResBlock(4, 4, norm="instance")
    assert not same.learned_shortcut
    assert ResBlock(4, 8, norm="batch", upsample=True)(torch.randn(2, 4, 4, 4)).shape == (2, 8, 8, 8)
    assert ResBlock(4, 8, norm="none", downsample=True)(torch.randn(2, 4, 4, 4)).shape == (2, 8, 2, 2)


def test_conv_block_orders_and_bias_rule():
    post = ConvBlock(3, 5, norm="batch", padding_mode="reflect")
    assert post.conv.bias is None and post(torch.randn(2, 3, 6, 6)).shape == (2, 5, 6, 6)
    pre = ConvBlock(3, 5, norm="batch", order="norm_act_conv")
    assert pre.norm.num_features == 3 and pre.conv.bias is not None
    with pytest.raises(ValueError, match="order"):
        ConvBlock(3, 5, order="act_conv")


def test_self_attention_starts_as_identity_and_matches_manual_attention():
    attn = SelfAttention(16, spectral_norm=False, pool=False)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(attn(x), x)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    q = attn.query(x).flatten(2)
    k = attn.key(x).flatten(2)
    v = attn.value(x).flatten(2)
    weights = torch.softmax(q.transpose(1, 2) @ k, dim=-1)          # HW x HW
    manual = attn.out((v @ weights.transpose(1, 2)).view(2, 8, 4, 4))
    assert torch.allclose(attn(x), x + manual, atol=1e-5)


REAL, FAKE = torch.tensor([0.5, 2.0, -1.0]), torch.tensor([-0.5, 1.0, 0.25])


def bce(p, t):
    return -(t * math.log(1 / (1 + math.exp(-p))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-p))))


@pytest.mark.parametrize("name, d_value, g_value", [
    ("hinge", (0.5 + 0 + 2) / 3 + (0.5 + 2 + 1.25) / 3, -(-0.5 + 1 + 0.25) / 3),
    ("wgan", (-0.5 + 1 + 0.25) / 3 - (0.5 + 2 - 1) / 3, -(-0.5 + 1 + 0.25) / 3),
    ("lsgan", (0.25 + 1 + 4) / 3 + (0.25 + 1 + 0.0625) / 3, (2.25 + 0 + 0.5625) / 3),
    ("non_saturating", sum(bce(r, 1) for r in REAL.tolist()) / 3 + sum(bce(f, 0) for f in FAKE.tolist()) / 3,
     sum(bce(f, 1) for f in FAKE.tolist()) / 3),
])
def test_gan_losses_against_hand_values(name, d_value, g_value):
    loss = LOSSES.build(name)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_value, rel=1e-5)
    assert loss.g_loss(FAKE).item() == pytest.approx(g_value, rel=1e-5)
    # a multiscale output (list of per-D feature lists) averages over discriminators
    multi = [[torch.zeros(2), FAKE], [torch.zeros(1), FAKE]]
    assert loss.g_loss(multi).item() == pytest.approx(g_value, rel=1e-5)


def test_gradient_penalty_of_linear_critic():
    w = torch.tensor([3.0, 4.0])  # |grad| = 5 everywhere
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    assert gradient_penalty(critic, real, fake, weight=10.0).item() == pytest.approx(10 * 16)
    assert gradient_penalty(critic, real, fake, weight=0.1, target=5.0).item() == pytest.approx(0.0, abs=1e-6)


def test_per_pixel_gradient_penalty_uses_channel_norm():
    weight = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    critic = lambda x: (x * weight).sum(1, keepdim=True)  # noqa: E731 - per-pixel grad norm 5
    real, fake = torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3, 3)
    assert gradient_penalty(critic, real, fake, 0.1, per_pixel=True).item() == pytest.approx(0.1 * 16)
    whole = gradient_penalty(critic, real, fake, 0.1, per_pixel=False).item()
    assert whole == pytest.approx(0.1 * (5 * 3 - 1) ** 2)  # sample norm over 9 pixels = 15


def test_image_losses():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert LOSSES.build({"type": "reconstruction", "kind": "l1"})(a, b).item() == pytest.approx(1.5)
    assert LOSSES.build("reconstruction")(a, b).item() == pytest.approx(2.5)
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    expected = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2) - 0 - 2))
    assert LOSSES.build("kld")(mu, logvar).item() == pytest.approx(expected)
    fm = LOSSES.build("feature_matching")
    fake = [[torch.ones(2), torch.zeros(1)], [torch.full((2,), 3.0), torch.zeros(1)]]
    real = [[torch.zeros(2), torch.ones(1)], [torch.ones(2), torch.ones(1)]]
    assert fm(fake, real).item() == pytest.approx((1 + 2) / 2)
    ms = LOSSES.build("mode_seeking")(torch.zeros(4), torch.full((4,), 2.0), torch.zeros(3), torch.ones(3))
    assert ms.item() == pytest.approx(1 / (2 + 1e-5))


def test_vgg_loss_weights_resolution(tmp_path, monkeypatch):
    from torchvision.models import vgg19
    from ganzoo.backbones.weights import WeightsNotFoundError
    from ganzoo.losses.perceptual import VGG19_FILE, VGGLoss
    monkeypatch.setenv("GANZOO_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError, match=VGG19_FILE):
        VGGLoss()
    torch.save(vgg19(weights=None).state_dict(), tmp_path / VGG19_FILE)
    loss = VGGLoss(layers=("relu1_1", "relu2_1"), layer_weights=(0.5, 1.0))
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert loss(x, x).item() == pytest.approx(0, abs=1e-7) and len(loss.slices) == 2
    assert not any(p.requires_grad for p in loss.parameters())
