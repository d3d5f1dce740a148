"""ConSinGAN: official stage sizes and parameter counts, concurrent stages with scaled LRs, the training step,
the trainer CLI with resume, and the SinGAN apps / CLI on a ConSinGAN run."""
import math
import os
import sys
import types

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.apps import singan as apps
from ganzoo.cli.singan import main as singan_main
from ganzoo.cli.train import main as train_main, make_trainer
from ganzoo.data.single_image import load_image
from ganzoo.engine.checkpoint import load
from ganzoo.engine.context import StepContext
from ganzoo.engine.optim import build_optimizers
from ganzoo.models.consingan import ConSinGAN, augment_colours, shuffle_patches, stage_scales, stage_sizes
from ganzoo.nets.consingan import ConSinGANDiscriminator, ConSinGANGenerator

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHELSEA = os.path.join(REPO, "ganzoo", "assets", "chelsea.png")
CONFIG = os.path.join(REPO, "configs", "consingan_quick.yaml")
OFFICIAL = os.path.join(REPO, "..", "shared", "refs", "consingan")
TINY = {"max_size": 40, "min_size": 20, "train_stages": 4, "nfc": 8, "steps_per_stage": 2}
TINY_CLI = ["model.max_size=40", "model.min_size=20", "model.train_stages=4", "model.nfc=8",
            "model.steps_per_stage=3", "train.schedule.milestones=[2]", "run.sample_every=6", "run.ckpt_every=5",
            "run.log_every=2", "run.progress=false", "run.sample_count=2"]

# measured with the official create_reals_pyramid / GrowingGenerator / Discriminator (tohinz/ConSinGAN 8b4681f)
CHELSEA_STAGES = {  # the bundled 250x166 photo, max_size 250 and 80
    ("generation", 250): [(26, 38), (31, 47), (41, 61), (60, 90), (114, 172), (166, 250)],
    ("harmonization", 250): [(26, 38), (37, 55), (54, 81), (78, 118), (114, 172), (166, 250)],
    ("generation", 80): [(25, 38), (28, 41), (31, 46), (36, 53), (47, 69), (54, 80)],
    ("harmonization", 80): [(25, 38), (30, 44), (35, 51), (40, 59), (47, 69), (54, 80)],
}
OTHER_STAGES = {  # (H, W) -> generation stages (editing / retarget share them), harmonization stages
    (300, 451): ([(25, 38), (31, 47), (41, 61), (60, 89), (115, 171), (167, 250)],
                 [(25, 38), (37, 55), (54, 80), (79, 117), (115, 171), (167, 250)]),
    (1024, 768): ([(34, 25), (42, 32), (56, 42), (84, 63), (167, 126), (250, 188)],
                  [(34, 25), (50, 38), (75, 57), (112, 84), (167, 126), (250, 188)]),
}
# official parameter counts at nfc 64, 3 layers: G with 1 / 3 / 6 stages (no BN, --batch_norm), D
PARAMS = {"G1": 114307, "G6": 668227, "G1_bn": 114819, "G3_bn": 337155, "D": 113153}


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def chelsea():
    return load_image(CHELSEA)


# ------------------------------------------------------------------------------------- stages and nets

@pytest.mark.parametrize("mode, max_size", list(CHELSEA_STAGES))
def test_stage_sizes_equal_the_official_on_the_bundled_photo(chelsea, mode, max_size):
    model = ConSinGAN(train_mode=mode, max_size=max_size)
    model.build_pyramid(chelsea)
    assert [tuple(r.shape[2:]) for r in model.reals] == CHELSEA_STAGES[mode, max_size]
    spacing = "even" if mode == "harmonization" else "dense"
    assert stage_sizes(166, 250, max_size=max_size, train_stages=6, spacing=spacing) == CHELSEA_STAGES[mode, max_size]


def test_stage_formula_by_hand_and_other_images():
    scale1, r, scales = stage_scales(166, 250)
    assert scale1 == 1 and abs(r - (25 / 166) ** (1 / 5)) < 1e-12
    # stage i of 6: r^(4 / ln 5 * ln(5 - i) + 1): exponents 5, 4.446, 3.733, 2.723, 1 (SinGAN's would be 5..1)
    exponents = [5, 4 / math.log(5) * math.log(4) + 1, 4 / math.log(5) * math.log(3) + 1, 2.7227062, 1]
    assert scales == pytest.approx([r ** e for e in exponents] + [1.0], rel=1e-6)
    assert stage_scales(166, 250, spacing="even")[2] == pytest.approx([r ** 5, r ** 4, r ** 3, r ** 2, r, 1.0])
    for hw, (dense, even) in OTHER_STAGES.items():
        assert stage_sizes(*hw) == dense and stage_sizes(*hw, spacing="even") == even
    assert len(stage_sizes(166, 250, train_stages=2)) == 2  # the official formula is 0/0 there; its limit
    with pytest.raises(ValueError, match="min_size"):
        stage_sizes(30, 2000)


def test_parameter_counts_equal_the_official():
    G = ConSinGANGenerator()
    assert count(G) == PARAMS["G1"] and count(ConSinGANDiscriminator()) == PARAMS["D"]
    for _ in range(5):
        G.grow()
    assert count(G) == PARAMS["G6"] and len(G.body) == 6
    G = ConSinGANGenerator(norm="batch", edge_upsample=False)
    assert count(G) == PARAMS["G1_bn"]
    G.grow(), G.grow()
    assert count(G) == PARAMS["G3_bn"]


@pytest.mark.parametrize("edge", [True, False])
def test_generator_shapes_and_growth_copies_the_last_stage(edge):
    G = ConSinGANGenerator(nfc=8, edge_upsample=edge)
    G.grow()
    assert all(torch.equal(a, b) for a, b in zip(G.body[0].state_dict().values(), G.body[1].state_dict().values()))
    sizes = [(10, 14), (16, 20)]
    extra = 6 if edge else 0
    noises = [torch.randn(2, 3, 10, 14), torch.randn(2, 8, 16 + extra, 20 + extra)]
    out = G(noises, sizes, [1.0, 0.5])
    assert out.shape == (2, 3, 16, 20) and out.abs().max() <= 1
    assert G(noises[:1], sizes[:1], [1.0]).shape == (2, 3, 10, 14)
    assert ConSinGANDiscriminator(nfc=8)(torch.randn(1, 3, 16, 20)).shape == (1, 1, 6, 10)


def test_generation_margins_come_from_bicubic_upsampling():
    """Edge upsampling (official generation mode): head features upsampled by 2 px, zero-padded by 2, stage 0."""
    torch.manual_seed(0)
    G = ConSinGANGenerator(nfc=8)
    z = torch.randn(1, 3, 10, 14)
    with torch.no_grad():
        for p in G.parameters():  # weights large enough for the borders to matter (the init is N(0, 0.02))
            p.normal_(0, 0.3)
        x = G.head(F.pad(z, (1, 1, 1, 1)))
        x = F.pad(F.interpolate(x, size=(12, 16), mode="bicubic", align_corners=True), (2, 2, 2, 2))
        expected = G.tail(F.pad(G.body[0](x), (1, 1, 1, 1)))
        assert torch.allclose(G([z], [(10, 14)], [1.0]), expected, atol=1e-6)
        G.edge_upsample = False  # zero margins instead: a different picture at the borders
        assert not torch.allclose(G([z], [(10, 14)], [1.0]), expected, atol=1e-4)


# ------------------------------------------------------------------------------------- official code

def _official():
    """The official modules (torch only) with their unused imaging / augmentation imports stubbed."""
    if not os.path.isdir(OFFICIAL):
        pytest.skip("../shared/refs/consingan is absent")
    stubs = {}
    for name in ("skimage", "skimage.io", "skimage.color", "skimage.morphology", "skimage.filters", "imageio",
                 "albumentations", "matplotlib", "matplotlib.pyplot", "matplotlib.patches"):
        if name not in sys.modules:
            stubs[name] = types.ModuleType(name)
    for name in ("io", "color", "morphology", "filters"):
        if "skimage" in stubs:
            setattr(stubs["skimage"], name, stubs.get(f"skimage.{name}", sys.modules.get(f"skimage.{name}")))
    if "albumentations" in stubs:
        for name in ("HueSaturationValue IAAAdditiveGaussianNoise GaussNoise OneOf Compose MultiplicativeNoise "
                     "ToSepia ChannelDropout ChannelShuffle Cutout InvertImg").split():
            setattr(stubs["albumentations"], name, None)
    saved = {k: sys.modules.get(k) for k in list(stubs) + [m for m in sys.modules if m.startswith("ConSinGAN")]}
    sys.modules.update(stubs)
    sys.path.insert(0, OFFICIAL)
    try:
        from ConSinGAN import functions, models
        from ConSinGAN.config import get_arguments
        return functions, models, get_arguments
    finally:
        sys.path.remove(OFFICIAL)
        for name in stubs:
            sys.modules.pop(name, None)
        for name, module in saved.items():
            if module is not None:
                sys.modules[name] = module


def _opt(get_arguments, mode, **kw):
    opt = get_arguments().parse_args([])
    opt.not_cuda, opt.device, opt.train_mode, opt.train_stages = True, "cpu", mode, 6
    for key, value in kw.items():
        setattr(opt, key, value)
    return opt


@pytest.mark.parametrize("mode", ["generation", "harmonization", "editing"])
def test_official_code_sizes_params_and_outputs(chelsea, mode):
    functions, models, get_arguments = _official()
    opt = _opt(get_arguments, mode, batch_norm=mode != "generation", max_size=80)
    reals = functions.create_reals_pyramid(functions.adjust_scales2image(chelsea, opt), opt)
    ours = ConSinGAN(train_mode=mode, max_size=80, norm="batch" if opt.batch_norm else "none")
    ours.build_pyramid(chelsea)
    assert [r.shape for r in reals] == [r.shape for r in ours.reals]
    assert max(float((a - b).abs().max()) for a, b in zip(reals, ours.reals)) < 1e-5
    G, D = models.GrowingGenerator(opt), models.Discriminator(opt)
    ours.begin_stage(0)
    assert count(ours.G) == count(G) and count(ours.D) == count(D)
    for k in range(1, 6):
        G.init_next_stage()
        ours.begin_stage(k)
    assert count(ours.G) == count(G)
    with torch.no_grad():  # same weights (the official BN also holds running statistics it never uses)
        for mine, theirs in zip(ours.G.parameters(), G.parameters(), strict=True):
            mine.copy_(theirs)
    shapes = [r.shape for r in reals]
    torch.manual_seed(0)
    noise = [torch.randn(ours._noise_shape(k, s[2:])) for k, s in enumerate(shapes)]
    if mode == "generation":
        torch.manual_seed(0)
        assert all(a.shape == b.shape for a, b in zip(functions.sample_random_noise(5, shapes, opt), noise))
    amps = [1.0, 0.3, 0.2, 0.1, 0.05, 0.02]
    with torch.no_grad():
        expected = G(noise, shapes, amps)
        assert torch.allclose(ours.G(noise, [s[2:] for s in shapes], amps), expected, atol=1e-5)


# ------------------------------------------------------------------------------------- concurrent stages

def tiny_model(image, **cfg):
    model = ConSinGAN(**{**TINY, **cfg})
    model.build_pyramid(image)
    return model


def lrs(model):
    return [group["lr"] for group in model.param_groups()["G"]["params"]]


def test_lr_scale_per_stage_age_and_frozen_stages(chelsea):
    model = tiny_model(chelsea, train_stages=5, lr_g=1.0)
    expected = {0: [1, 1, 1], 1: [0.1, 1, 0.1, 1], 2: [0.01, 0.1, 1, 0.01, 1], 3: [0.01, 0.1, 1, 1],
                4: [0.01, 0.1, 1, 1]}  # trained blocks oldest first, head while young (lr_scale^stage), tail
    for k, lr in expected.items():
        model.begin_stage(k)
        assert lrs(model) == pytest.approx(lr), k
        trains = [any(p.requires_grad for p in block.parameters()) for block in model.G.body]
        assert trains == [i > k - 3 for i in range(k + 1)], k
        assert all(p.requires_grad for p in model.G.tail.parameters())
        assert all(p.requires_grad == (k < 3) for p in model.G.head.parameters())


def test_train_depth_and_lr_scale_are_used(chelsea):
    model = tiny_model(chelsea, train_stages=5, lr_g=1.0, lr_scale=0.5, train_depth=2)
    for k in range(4):
        model.begin_stage(k)
    assert lrs(model) == pytest.approx([0.5, 1, 1])  # two blocks, no head at stage 3 >= train_depth
    assert [any(p.requires_grad for p in b.parameters()) for b in model.G.body] == [False, False, True, True]


def one_step(model, **ctx_kw):
    optimizers = build_optimizers(model.param_groups())
    ctx = StepContext(optimizers, **ctx_kw)
    return model.train_step({}, ctx), optimizers


def test_concurrent_stages_all_learn_and_older_stages_stay(chelsea):
    torch.manual_seed(0)
    model = tiny_model(chelsea, d_steps=1, g_steps=1)
    for k in range(4):
        model.begin_stage(k)
    before = {n: p.detach().clone() for n, p in model.G.named_parameters()}
    losses, _ = one_step(model)
    assert all(torch.isfinite(v) for v in losses.values())
    moved = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("body") else "")
             for n, p in model.G.named_parameters() if not torch.equal(before[n], p)}
    assert moved == {"body.1", "body.2", "body.3", "tail"}  # stage 0's block and the head are frozen at stage 3


def test_noise_amplitude_and_reconstruction_inputs(chelsea):
    torch.manual_seed(0)
    model = tiny_model(chelsea)
    model.begin_stage(0)
    assert torch.equal(model.z_rec[0], model.reals[0]) and float(model.noise_amp[0]) == 1
    model.begin_stage(1)
    assert model.z_rec[1].shape == (1, 8, model.reals[1].shape[2] + 6, model.reals[1].shape[3] + 6)
    amp = float(model.noise_amp[1])
    model.noise_amp[1].zero_()
    with torch.no_grad():
        rmse = torch.sqrt(F.mse_loss(model.reconstruct(), model.reals[1]))
    assert amp == pytest.approx(0.1 * float(rmse), rel=1e-5) and amp > 0
    harm = tiny_model(chelsea, train_mode="harmonization")
    harm.begin_stage(1)
    assert harm.z_rec[1].shape[2:] == harm.reals[1].shape[2:]
    edit = tiny_model(chelsea, train_mode="editing")
    edit.begin_stage(0)
    diff = edit.z_rec[0] - edit.reals[0]
    assert 0.05 < float(diff.std()) < 0.15  # noise_scaling 0.1


def test_repeat_mode_takes_g_steps_adam_steps_on_one_gradient(chelsea):
    results = {}
    for mode, steps in (("repeat", 1), ("fresh", 1), ("repeat", 3), ("fresh", 3)):
        torch.manual_seed(0)
        model = tiny_model(chelsea, d_steps=1, g_steps=steps, g_step_mode=mode)
        model.begin_stage(0)
        torch.manual_seed(1)
        one_step(model)
        results[mode, steps] = torch.cat([p.detach().flatten() for p in model.G.parameters()])
    assert torch.equal(results["repeat", 1], results["fresh", 1])
    assert not torch.allclose(results["repeat", 3], results["fresh", 3])


def test_augmentations_keep_shape_and_range(chelsea):
    real = ConSinGAN(max_size=80)
    real.build_pyramid(chelsea)
    x = real.reals[0]
    g = torch.Generator().manual_seed(0)
    shuffled = shuffle_patches(x, g)
    assert shuffled.shape == x.shape and not torch.equal(shuffled, x)
    changed = [not torch.equal(augment_colours(x, g), x) for _ in range(10)]
    assert sum(changed) >= 7  # the cutout alone has p 0.9
    for mode in ("harmonization", "editing", "retarget"):
        torch.manual_seed(0)
        model = tiny_model(chelsea, train_mode=mode, norm="batch", d_steps=1, g_steps=1)
        model.begin_stage(0)
        model.begin_stage(1)
        losses, _ = one_step(model)
        assert all(torch.isfinite(v) for v in losses.values()), mode


def test_state_roundtrip_rebuilds_a_fresh_model(chelsea):
    torch.manual_seed(0)
    model = tiny_model(chelsea)
    for k in range(3):
        model.begin_stage(k)
    fresh = ConSinGAN(**TINY)
    fresh.load_state_dict(model.state_dict())
    assert fresh.trained_scales == 3 and fresh.num_scales == 4
    assert torch.equal(fresh.sample(n=2, seed=3), model.sample(n=2, seed=3))
    assert model.sample(n=2, seed=3, scale_h=1.5).shape[3] == int(model.reals[2].shape[3] * 1.5)


def test_bad_config():
    for bad, match in (({"train_mode": "animate"}, "train_mode"), ({"train_stages": 1}, "train_stages"),
                       ({"lr_scale": 0.0}, "lr_scale"), ({"norm": "instance"}, "norm"), ({"nfc": 0}, "nfc")):
        with pytest.raises(ValueError, match=match):
            ConSinGAN(**bad)


# ------------------------------------------------------------------------------------- trainer, resume, apps

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("consingan") / "run")
    assert train_main([CONFIG, *TINY_CLI, "--run-dir", out]) == 0
    return out


def test_tiny_config_trains_through_the_cli_and_resumes_exactly(run_dir, tmp_path):
    model = ganzoo.load(run_dir, device="cpu")
    assert model.trained_scales == 4 and [tuple(r.shape[2:]) for r in model.reals] == [
        (21, 30), (22, 32), (25, 37), (27, 40)]
    for name in ("config.yaml", "log.jsonl", "samples/step_00000012.png", "checkpoints/latest"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    part = str(tmp_path / "part")
    assert make_trainer(CONFIG, TINY_CLI, run_dir=part).fit(stop_after=7)["status"] == "stopped"  # stage 2
    make_trainer(CONFIG, TINY_CLI, run_dir=part, resume=True).fit()
    straight, resumed = load(run_dir)["model"], load(part)["model"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_apps_and_cli_on_a_consingan_run(run_dir, tmp_path):
    model = ganzoo.load(run_dir, device="cpu")
    samples = apps.random_samples(model, 3, seed=0)
    assert samples.shape == (3, 3) + tuple(model.reals[-1].shape[2:]) and samples.std(0).mean() > 0
    wide = apps.random_samples(model, 1, seed=0, scale_h=2.0)
    assert wide.shape[3] == 2 * model.reals[-1].shape[3]
    fixed = apps.random_samples(model, 2, start_scale=1, seed=0)  # stage 0 from its fixed input
    assert fixed.shape[0] == 2
    ref = model.reals[-1].clone()
    mask = -torch.ones_like(ref)
    mask[:, :, 5:15, 5:15] = 1
    harmonized = apps.harmonization(model, ref, mask, 0)
    assert torch.allclose(harmonized[:, :, 30:, 30:], ref[:, :, 30:, 30:], atol=1e-4)  # outside the dilated mask
    raw, masked = apps.editing(model, ref, mask, 0, seed=1)
    assert raw.shape == masked.shape == ref.shape
    with pytest.raises(ValueError, match="stage 0|0..0"):
        apps.harmonization(model, ref, mask, 1)
    with pytest.raises(ValueError, match="SinGAN model"):
        apps.animation(model, start_scale=0, frames=2)
    apps.save_image(ref, str(tmp_path / "ref.png"))
    apps.save_image(mask, str(tmp_path / "ref_mask.png"))
    out = str(tmp_path / "out")
    base = ["--checkpoint", run_dir, "--out", out, "--seed", "0"]
    assert singan_main(["random_samples", *base, "--num", "2", "--scale-h", "1.5"]) == 0
    for app in ("harmonization", "editing"):
        assert singan_main([app, *base, "--ref", str(tmp_path / "ref.png"), "--scale", "0"]) == 0
    assert singan_main(["harmonization", *base, "--ref", str(tmp_path / "ref.png"), "--scale", "2"]) == 2
    assert singan_main(["sr", *base]) == 2
    assert sorted(os.listdir(out)) == ["0.png", "1.png", "ref_editing_scale=0.png", "ref_editing_scale=0_masked.png",
                                       "ref_harmonization_scale=0.png"]
