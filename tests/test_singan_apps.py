"""SinGAN through the trainer (tools/train.py path), resume mid-pyramid, every app and the CLI."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.apps import singan as apps
from ganzoo.cli.singan import main as singan_main
from ganzoo.cli.train import main as train_main, make_trainer
import ganzoo
from ganzoo.engine.checkpoint import load

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "singan_quick.yaml")
TINY = ["model.max_size=40", "model.min_size=20", "model.steps_per_scale=4", "train.schedule.milestones=[3]",
        "run.sample_every=4", "run.ckpt_every=6", "run.log_every=2", "run.progress=false", "run.sample_count=2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("singan") / "run")
    assert train_main([CONFIG, *TINY, "--run-dir", out]) == 0
    return out


@pytest.fixture(scope="module")
def model(run_dir):
    m = ganzoo.load(run_dir, device="cpu")
    return m


def test_tiny_config_trains_through_tools_train(run_dir, model):
    for name in ("config.yaml", "log.jsonl", "index.html", "samples/step_00000012.png", "checkpoints/latest"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert model.num_scales == 3 and len(model.generators) == 3
    assert [tuple(r.shape[2:]) for r in model.reals] == [(20, 30), (24, 35), (27, 40)]


def test_eval_cli_takes_a_run_directory(run_dir, tmp_path):
    from ganzoo.cli.eval import main as eval_main
    out = tmp_path / "metrics.json"
    metrics = "+eval.metrics=[{type: swd, num_samples: 2, batch_size: 2, min_resolution: 16}, {type: diversity, num_samples: 3}]"
    assert eval_main([CONFIG, metrics, "--checkpoint", run_dir, "--device", "cpu", "--out", str(out)]) == 0
    import json
    results = json.loads(out.read_text())
    assert results["swd"] > 0 and 0 < results["diversity"] < 2


def test_resume_mid_pyramid_equals_straight_run(run_dir, tmp_path):
    part = str(tmp_path / "part")
    first = make_trainer(CONFIG, TINY, run_dir=part).fit(stop_after=6)  # stage 1, step 2 of 4
    assert first["status"] == "stopped"
    make_trainer(CONFIG, TINY, run_dir=part, resume=True).fit()
    straight, resumed = load(run_dir)["model"], load(part)["model"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_random_samples_any_start_scale_and_size(model):
    for start in (0, 1, 2):
        out = apps.random_samples(model, num=2, start_scale=start, seed=0)
        assert out.shape == (2, 3, 27, 40) and out.abs().max() < 2
    a = apps.random_samples(model, num=2, start_scale=2, seed=0)
    b = apps.random_samples(model, num=2, start_scale=0, seed=0)
    assert (a[0] - a[1]).abs().mean() < (b[0] - b[1]).abs().mean()  # finer start scale: less variation
    assert apps.random_samples(model, num=1, scale_v=1.5, scale_h=0.75, seed=0).shape == (1, 3, 40, 30)
    with pytest.raises(ValueError, match="start_scale"):
        apps.random_samples(model, num=1, start_scale=3)
    with pytest.raises(ValueError, match="start_scale 0"):
        apps.random_samples(model, num=1, start_scale=1, scale_h=2)


def test_animation_harmonization_editing_paint_sr(model):
    frames = apps.animation(model, start_scale=1, frames=5, seed=0)
    assert frames.shape == (5, 3, 27, 40) and not torch.equal(frames[0], frames[4])
    ref = torch.rand(1, 3, 50, 60) * 2 - 1
    mask = -torch.ones(1, 3, 50, 60)
    mask[..., 20:30, 25:35] = 1
    harmonized = apps.harmonization(model, ref, mask, scale=1, seed=0)
    assert harmonized.shape == (1, 3, 27, 40)
    raw, masked = apps.editing(model, ref, mask, scale=2, seed=0)
    assert raw.shape == masked.shape == (1, 3, 27, 40)
    far = apps._fit(model, ref)[..., 0, 0]  # far from the mask the blend keeps the reference
    torch.testing.assert_close(harmonized[..., 0, 0], far, atol=1e-5, rtol=0)
    assert apps.paint2image(model, ref, scale=1, quantize=True, seed=0).shape == (1, 3, 27, 40)
    sr = apps.super_resolution(model, factor=2, seed=0)
    assert sr.shape == (1, 3, 54, 80)
    with pytest.raises(ValueError, match="injection scale"):
        apps.inject(model, ref, scale=0)


def test_kmeans_and_mask_helpers():
    torch.manual_seed(0)
    points = torch.cat([torch.randn(50, 3) * 0.01 + c for c in (torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0]))])
    centres, labels = apps.kmeans(points, 2, seed=0)
    assert sorted(centres.round().tolist()) == [[0, 1, 0], [1, 0, 0]]
    assert labels[:50].unique().numel() == 1 and labels[0] != labels[-1]
    mask = -torch.ones(1, 3, 64, 64)
    mask[..., 30:34, 30:34] = 1
    soft = apps.dilate_mask(mask, radius=7)
    assert soft.max().item() == pytest.approx(1) and soft.min().item() == pytest.approx(0, abs=1e-6)
    assert soft[0, 0, 32, 32].item() == pytest.approx(1) and soft[0, 0, 0, 0] < 0.01
    everywhere = apps.dilate_mask(torch.ones(1, 3, 16, 16), radius=7)  # min-max of a constant: keep it, not 0
    assert everywhere.min().item() == pytest.approx(1)
    assert apps.dilate_mask(-torch.ones(1, 3, 16, 16), radius=7).max().item() == pytest.approx(0)
    assert apps.sr_schedule(4) == (6, pytest.approx(4 ** (1 / 6)))


def test_cli_apps(run_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    base = ["--checkpoint", run_dir, "--out", out, "--seed", "0"]
    assert singan_main(["random_samples", *base, "--num", "2", "--start-scale", "1"]) == 0
    assert Image.open(os.path.join(out, "1.png")).size == (40, 27)
    assert singan_main(["animation", *base, "--frames", "3", "--start-scale", "0"]) == 0
    gif = [f for f in os.listdir(out) if f.endswith(".gif")]
    assert len(gif) == 1 and Image.open(os.path.join(out, gif[0])).n_frames == 3
    ref = np.random.default_rng(0).integers(0, 255, (27, 40, 3), dtype=np.uint8)
    Image.fromarray(ref).save(tmp_path / "ref.png")
    mask = np.zeros((27, 40), np.uint8)
    mask[10:15, 10:20] = 255
    Image.fromarray(mask).save(tmp_path / "ref_mask.png")
    for app in ("harmonization", "editing"):
        assert singan_main([app, *base, "--ref", str(tmp_path / "ref.png"), "--scale", "1"]) == 0
    assert singan_main(["paint2image", *base, "--paint", str(tmp_path / "ref.png"), "--scale", "2", "--quantize"]) == 0
    assert singan_main(["sr", *base, "--factor", "2"]) == 0
    assert Image.open(os.path.join(out, "training_image_SR_x2.png")).size == (80, 54)
    names = sorted(os.listdir(out))
    assert "ref_editing_scale=1_masked.png" in names and "ref_paint2image_scale=2_quantized.png" in names
    # bad inputs: one-line errors, exit status 2
    capsys.readouterr()
    assert singan_main(["harmonization", *base, "--ref", str(tmp_path / "nope.png"), "--scale", "1"]) == 2
    assert singan_main(["random_samples", *base, "--start-scale", "9"]) == 2
    assert singan_main(["sr", "--checkpoint", str(tmp_path / "missing"), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_train_rejects_bad_images(tmp_path, capsys):
    (tmp_path / "bad.png").write_text("text")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "small.png")
    for image in ("bad.png", "small.png", "missing.png"):
        code = train_main([CONFIG, f"data.image={tmp_path / image}", "--run-dir", str(tmp_path / f"run_{image}")])
        assert code == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "min_size" in err and "does not exist" in err
