"""SinGAN core: pyramid formulas, MATLAB-style resize, networks, single-image data, training step, state."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo.config import ConfigError
from ganzoo.data.single_image import SingleImage, load_image
from ganzoo.engine.context import StepContext
from ganzoo.layers.imresize import imresize, resize_matrix
from ganzoo.models.singan import SinGAN, pyramid_plan
from ganzoo.nets.singan import SinGANDiscriminator, SinGANGenerator, singan_width
from ganzoo.registry import DATASETS, MODELS

torch.set_num_threads(1)
TINY = {"max_size": 40, "min_size": 20, "steps_per_scale": 3}


# ------------------------------------------------------------------------------------- pyramid

@pytest.mark.parametrize("hw, cfg, num, r, first, last", [
    ((300, 451), {}, 8, 0.7624, (25, 38), (167, 250)),
    ((250, 250), {}, 11, 0.7943, (25, 25), (250, 250)),
    ((1024, 768), {}, 9, 0.7771, (34, 25), (250, 188)),
    ((300, 451), {"max_size": 40, "min_size": 20}, 3, 0.8607, (20, 30), (27, 40)),
])
def test_pyramid_matches_official_examples(hw, cfg, num, r, first, last):
    plan = pyramid_plan(*hw, **{"max_size": 250, "min_size": 25, **cfg})
    assert plan[0] == num and abs(plan[1] - r) < 1e-4
    model = SinGAN(**cfg)
    model.build_pyramid(torch.zeros(1, 3, *hw))
    sizes = [tuple(x.shape[2:]) for x in model.reals]
    assert len(sizes) == num and sizes[0] == first and sizes[-1] == last
    if cfg:  # the notes' full list for the tiny pyramid
        assert sizes == [(20, 30), (24, 35), (27, 40)]


def test_pyramid_rejects_small_images():
    with pytest.raises(ValueError, match="min_size"):
        pyramid_plan(20, 100)
    with pytest.raises(ValueError, match="too small"):
        pyramid_plan(30, 2000)  # long side fitted to 250 leaves a short side < 25


# ------------------------------------------------------------------------------------- resize

def cubic(x):
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax ** 3 - 2.5 * ax ** 2 + 1
    if ax <= 2:
        return -0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2
    return 0.0


def test_resize_weights_by_hand():
    c25, c75, c125, c175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375
    assert [cubic(v) for v in (0.25, 0.75, 1.25, 1.75)] == [c25, c75, c125, c175]
    m = resize_matrix(8, 4, 0.5).numpy()  # downscale x2: antialiased kernel of width 8
    row0 = np.array([c25, c25, c75, c125, c175, 0, 0, 0])  # taps left of the image dropped, renormalised
    np.testing.assert_allclose(m[0], row0 / row0.sum(), atol=1e-15)
    row1 = np.array([c125, c75, c25, c25, c75, c125, c175, 0])
    np.testing.assert_allclose(m[1], row1 / row1.sum(), atol=1e-15)
    sym = resize_matrix(8, 4, 0.5, border="symmetric").numpy()  # tap -1 mirrored onto pixel 0
    np.testing.assert_allclose(sym[1], np.array([c125 + c175, c75, c25, c25, c75, c125, c175, 0]) * 0.5, atol=1e-15)
    last = np.array([0, 0, 0, c175, c125, c75 + c175, c25 + c125, c25 + c75])  # taps 8, 9, 10 -> 7, 6, 5
    np.testing.assert_allclose(m[3], last * 0.5, atol=1e-15)  # right border: symmetric reflection
    up = resize_matrix(4, 8, 2.0).numpy()  # upscale x2: plain cubic, first output at input position 0.75
    np.testing.assert_allclose(up[0], np.array([c25, c125, 0, 0]) / (c25 + c125), atol=1e-15)
    np.testing.assert_allclose(up.sum(1), 1, atol=1e-12)


def numpy_imresize(image, scale, border="official"):
    """Independent float64 reference: per output pixel, gather taps, weight, normalise (H then W)."""
    out = image.astype(np.float64)
    for axis in (0, 1):
        n_in = out.shape[axis]
        n_out = int(math.ceil(n_in * scale))
        aa = scale < 1
        width = 4 / scale if aa else 4
        moved = np.moveaxis(out, axis, 0)
        result = np.zeros((n_out,) + moved.shape[1:])
        for i in range(n_out):
            center = (i + 1) / scale + 0.5 * (1 - 1 / scale)
            acc, total = 0.0, 0.0
            for j in range(int(math.floor(center - width / 2)) - 1, int(math.floor(center + width / 2)) + 2):
                w = scale * cubic(scale * (center - j - 1)) if aa else cubic(center - j - 1)
                if j < 0 and border == "official":
                    continue
                k = j
                while k < 0 or k >= n_in:
                    k = -k - 1 if k < 0 else 2 * n_in - 1 - k
                acc = acc + w * moved[k]
                total += w
            result[i] = acc / total
        out = np.moveaxis(result, 0, axis)
    return out


@pytest.mark.parametrize("shape, scale", [((13, 17), 0.75), ((20, 30), 1 / 0.8607), ((25, 34), 0.44), ((9, 12), 2.0)])
@pytest.mark.parametrize("border", ["official", "symmetric"])
def test_resize_against_numpy(shape, scale, border):
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (3,) + shape)
    x = torch.from_numpy(image)[None]
    got = imresize(x, scale, quantize=False, border=border)[0].numpy()
    ref = np.stack([numpy_imresize(c, scale, border) for c in image]).clip(-1, 1)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # uint8 round trip: truncation to 0..255, resize, back to [-1, 1]
    q = np.floor(255 * (image + 1) / 2)
    ref_q = (np.stack([numpy_imresize(c, scale, border) for c in q]) / 255 - 0.5) * 2
    np.testing.assert_allclose(imresize(x, scale, border=border)[0].numpy(), ref_q.clip(-1, 1), atol=1e-12)
    # float32 path (the one training uses) agrees to float32 precision
    got32 = imresize(x.float(), scale, quantize=False, border=border)[0].numpy()
    np.testing.assert_allclose(got32, ref.clip(-1, 1), atol=2e-6)


def test_resize_interior_equals_torch_antialiased_bicubic():
    x = torch.rand(1, 3, 40, 52, dtype=torch.float64) * 2 - 1
    for s in (0.5, 0.75, 1.25):
        ours = imresize(x, s, quantize=False)
        ref = F.interpolate(x, scale_factor=s, mode="bicubic", antialias=True, align_corners=False,
                            recompute_scale_factor=False).clamp(-1, 1)
        h, w = ref.shape[2:]
        torch.testing.assert_close(ours[..., 2:h - 2, 2:w - 2], ref[..., 2:h - 2, 2:w - 2], atol=1e-10, rtol=0)


def test_resize_size_and_errors():
    assert imresize(torch.zeros(2, 1, 25, 34), 1 / 0.75).shape == (2, 1, 34, 46)  # ceil(33.33), ceil(45.33)
    assert imresize(torch.zeros(1, 3, 10, 10), size=(7, 13)).shape == (1, 3, 7, 13)
    with pytest.raises(ValueError):
        imresize(torch.zeros(3, 10, 10), 0.5)
    with pytest.raises(ValueError):
        imresize(torch.zeros(1, 3, 10, 10))


# ------------------------------------------------------------------------------------- networks

def test_networks_match_official_sizes():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(SinGANGenerator()), count(SinGANDiscriminator())) == (29763, 29185)
    assert (count(SinGANGenerator(nfc=64, min_nfc=64)), count(SinGANDiscriminator(nfc=64, min_nfc=64))) == (114819, 113665)
    assert count(SinGANGenerator(nfc=128, min_nfc=128)) == 450819
    assert [singan_width(n) for n in (0, 3, 4, 7, 8, 12)] == [32, 32, 64, 64, 128, 128]
    g, d = SinGANGenerator(), SinGANDiscriminator()
    skip = torch.randn(1, 3, 12, 16)
    assert g(torch.randn(1, 3, 22, 26), skip).shape == skip.shape
    assert d(torch.randn(1, 3, 22, 26)).shape == (1, 1, 12, 16)


# ------------------------------------------------------------------------------------- data

def test_single_image_modes(tmp_path):
    from PIL import Image

    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0  # fully transparent red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((30, 40), 128, np.uint8), "L").save(tmp_path / "g.png")
    dropped = load_image(tmp_path / "a.png")
    assert dropped.shape == (1, 3, 30, 40) and dropped[0, 0].min() == 1 and dropped[0, 1].max() == -1
    assert load_image(tmp_path / "a.png", alpha="white").min() == 1
    gray3 = load_image(tmp_path / "g.png")
    assert gray3.shape == (1, 3, 30, 40) and torch.allclose(gray3, torch.full_like(gray3, (128 / 255 - 0.5) * 2))
    assert load_image(tmp_path / "a.png", mode="gray").shape == (1, 1, 30, 40)
    ds = DATASETS.build({"type": "single_image", "image": "ganzoo/assets/chelsea.png"})  # repo-relative
    assert len(ds) == 1 and ds[0]["image"].shape == (3, 166, 250)


def test_single_image_errors(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        SingleImage(image=str(tmp_path / "x.png"))
    with pytest.raises(FileNotFoundError, match="not found"):
        SingleImage(image="no/such/file.png")
    with pytest.raises(ValueError, match="unknown key"):
        SingleImage(image=None, colour="rgb")
    with pytest.raises(FileNotFoundError):
        SingleImage()[0]


# ------------------------------------------------------------------------------------- model

def _train(model, image, steps=None, stages=None):
    model.build_pyramid(image)
    for stage in range(stages or model.num_scales):
        model.begin_stage(stage)
        model.train()
        opts = {k: torch.optim.Adam(v.pop("params"), **v) for k, v in model.param_groups().items()}
        ctx = StepContext(opts)
        for _ in range(steps or model.cfg["steps_per_scale"]):
            losses = model.train_step({}, ctx)
    return losses


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(0)
    return load_image("ganzoo/assets/chelsea.png")


def test_train_state_roundtrip_and_sample(image):
    torch.manual_seed(0)
    model = MODELS.build({"type": "singan", **TINY})
    losses = _train(model, image)
    assert all(torch.isfinite(v) for v in losses.values())
    assert float(model.noise_amp[0]) == 1.0 and all(0 < float(a) < 1 for a in list(model.noise_amp)[1:])
    assert all(not p.requires_grad for g in list(model.generators)[:-1] for p in g.parameters())
    assert not model.generators[0].training
    state = model.state_dict()
    assert {"r", "reals.2", "z_rec.2", "noise_amp.2", "D.tail.weight"} <= set(state)
    fresh = SinGAN(**TINY)  # no prepare(): grows the pyramid from the keys
    fresh.load_state_dict(state)
    model.eval(), fresh.eval()
    a, b = model.sample(n=3, seed=5), fresh.sample(n=3, seed=5)
    assert a.shape == (3, 3, 27, 40) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert model.sample(n=2, seed=1, scale_h=1.5).shape == (2, 3, 27, 60)


def test_weights_copied_from_previous_scale(image):
    torch.manual_seed(0)
    model = SinGAN(**TINY)
    model.build_pyramid(image)
    model.begin_stage(0)
    with torch.no_grad():
        model.generators[0].tail.weight.add_(1.0)
    model.begin_stage(1)
    assert torch.equal(model.generators[1].tail.weight, model.generators[0].tail.weight)


def test_stale_equals_fresh_for_one_g_step(image):
    """With one G step the stale graph sees unchanged weights, so both semantics give the same update."""
    params = []
    for mode in ("fresh", "stale"):
        torch.manual_seed(0)
        model = SinGAN(**{**TINY, "g_steps": 1, "g_step_mode": mode})
        _train(model, image, steps=2)
        params.append([t.detach().clone() for t in model.state_dict().values()])
    for a, b in zip(*params):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_stale_mode_differs_with_three_g_steps(image):
    params = []
    for mode in ("fresh", "stale"):
        torch.manual_seed(0)
        model = SinGAN(**{**TINY, "g_step_mode": mode})
        _train(model, image, steps=2, stages=1)
        params.append(torch.cat([p.detach().flatten() for p in model.generators[-1].parameters()]))
    assert not torch.allclose(params[0], params[1])


def test_optimizers_named_G_and_D_and_stage_costs(image):
    model = SinGAN(**TINY, width_every=1, max_nfc=64)
    model.build_pyramid(image)
    model.begin_stage(0)
    assert set(model.param_groups()) == {"G", "D"}
    # scales 20x30, 24x35, 27x40, padded by 5 on each side; widths 32, 64, 64 (doubling every scale, cap 64)
    padded = [30 * 40, 34 * 45, 37 * 50]
    expected = [p * w ** 2 / (padded[0] * 32 ** 2) for p, w in zip(padded, (32, 64, 64))]
    assert [stage["cost"] for stage in model.stages()] == pytest.approx(expected)


def test_part_keys_follow_the_model_and_widths_grow_per_scale(image):
    with pytest.raises(ConfigError, match=r"^model.discriminator.nfc=64 conflicts with model.nfc=8$"):
        SinGAN(**TINY, nfc=8, discriminator={"type": "singan_discriminator", "nfc": 64})
    model = SinGAN(**TINY, nfc=8, min_nfc=8, width_every=1, max_nfc=16,
                   generator={"type": "singan_generator", "nfc": 8, "norm": "batch"})
    model.build_pyramid(image)
    model.begin_stage(2)
    assert [G.body[0].conv.out_channels for G in model.generators] == [8, 16, 16]
    assert model.D.body[0].conv.out_channels == 16


def test_sample_leaves_modes_and_batch_norm_statistics_alone(image):
    torch.manual_seed(0)
    model = SinGAN(**TINY)
    model.build_pyramid(image)
    model.begin_stage(1)
    model.train()
    flags = {name: m.training for name, m in model.named_modules()}
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.sample(n=2, seed=0)
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(torch.equal(stats[k], v) for k, v in model.state_dict().items() if "running" in k)
    assert flags["generators.1"] and not flags["generators.0"]


def test_bad_model_config():
    with pytest.raises(ValueError, match="g_step_mode"):
        SinGAN(g_step_mode="old")
    with pytest.raises(ValueError, match="unknown key"):
        SinGAN(niter=10)
    with pytest.raises(RuntimeError, match="prepare"):
        SinGAN().stages()
