import copy
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo.losses.segmentation_gan import class_balance_weights, labelmix
from ganzoo.registry import LOSSES


def one_hot(ids, n):
    return F.one_hot(ids, n).permute(0, 3, 1, 2).float()


def test_class_balance_weights_by_hand():
    # 4 pixels: class 0 x3, class 1 x1 -> weights 4/(2*3), 4/(2*1)
    label = one_hot(torch.tensor([[[0, 0], [0, 1]]]), 3)
    w = class_balance_weights(label)
    torch.testing.assert_close(w, torch.tensor([[[2 / 3, 2 / 3], [2 / 3, 2.0]]]))
    w = class_balance_weights(label, dontcare=1)  # only class 0 counts: 4 / (1*3)
    torch.testing.assert_close(w, torch.tensor([[[4 / 3, 4 / 3], [4 / 3, 0.0]]]))


def test_n_plus_one_targets_and_labelmix():
    loss = LOSSES.build({"type": "segmentation_gan", "balance": False})
    label = one_hot(torch.tensor([[[0, 1], [1, 1]]]), 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[:, 2] = 5.0  # D says "fake" everywhere
    fake_term = -torch.log_softmax(torch.tensor([0.0, 0.0, 5.0]), 0)[2]
    real_term = -torch.log_softmax(torch.tensor([0.0, 0.0, 5.0]), 0)[0]
    torch.testing.assert_close(loss.d_loss(pred, pred, label), real_term + fake_term)
    torch.testing.assert_close(loss.g_loss(pred, label), real_term)
    real, fake = torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)
    mixed, mask = labelmix(label, fake, real, torch.Generator().manual_seed(0))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    ids = label.argmax(1, keepdim=True)
    assert (mask[ids == 1].unique().numel() == 1) and (mask[ids == 0].unique().numel() == 1)
    torch.testing.assert_close(mixed, mask * real + (1 - mask) * fake)


def test_oasis_nets_official_param_counts_and_shapes():
    from ganzoo.registry import DISCRIMINATORS, GENERATORS
    count = lambda m: sum(p.numel() for p in m.parameters())
    # official OASIS at ADE20K 256^2 (semantic_nc 151): G 74,314,691, D 22,258,904 (built from refs)
    assert count(GENERATORS.build({"type": "oasis_generator", "label_nc": 151})) == 74314691
    assert count(DISCRIMINATORS.build({"type": "oasis_unet", "label_nc": 151})) == 22258904
    g = GENERATORS.build({"type": "oasis_generator", "label_nc": 4, "ngf": 2, "z_dim": 3, "num_blocks": 3,
                          "crop_size": 16, "norm": {"type": "spade", "param_free": "batch", "hidden": 8}})
    seg = one_hot(torch.randint(0, 4, (2, 16, 16)), 4)
    z = torch.randn(2, 3)
    out = g(seg, z)
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    assert not torch.allclose(out, g(seg, torch.randn(2, 3)))  # the 3D noise changes the image
    d = DISCRIMINATORS.build({"type": "oasis_unet", "label_nc": 4, "num_blocks": 3, "width_scale": 0.0625})
    assert d(out).shape == (2, 5, 16, 16)


# ---- official parity (the reference part skips without ../shared/refs/oasis) ---------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(os.path.dirname(ROOT), "shared", "refs", "oasis")
PAIRED = os.path.join(ROOT, "tests", "data", "paired_tiny")


def reference_modules():
    if not os.path.isdir(REF):
        pytest.skip("official OASIS code not found at ../shared/refs/oasis")
    sys.path.insert(0, REF)
    try:
        import models.discriminator as ref_d
        import models.generator as ref_g
        import models.losses as ref_losses
    finally:
        sys.path.remove(REF)
    return ref_g, ref_d, ref_losses


def ref_options(**kw):
    base = dict(no_spectral_norm=False, channels_G=2, num_res_blocks=6, crop_size=64, aspect_ratio=1.0, semantic_nc=5,
                z_dim=3, no_3dnoise=False, param_free_norm="batch", spade_ks=3, gpu_ids="-1", no_balancing_inloss=False,
                contain_dontcare_label=True, no_labelmix=False)
    return types.SimpleNamespace(**{**base, **kw})


def test_configs_build_the_official_networks():
    """The paper configs: Cityscapes' parameter counts and output size equal the official modules' (measured with
    boschresearch/OASIS at semantic_nc 35, 512x256, channels_G 64, z_dim 64, num_res_blocks 6; ADE20K's are
    checked on the nets above; COCO-Stuff's are G 75,199,427 / D 22,260,984) and the official options."""
    from ganzoo.engine.options import load_config
    from ganzoo.registry import MODELS
    count = lambda m: sum(p.numel() for p in m.parameters())
    cfgs = {name: load_config(os.path.join(ROOT, "configs", f"oasis_{name}.yaml"))
            for name in ("ade20k", "coco_stuff", "cityscapes")}
    model = MODELS.build({**cfgs["cityscapes"]["model"], "init_gain": None})
    assert (count(model.G), count(model.D), model.G.output_size) == (71107523, 22251364, (256, 512))
    official = {"ade20k": (151, 0, 10.0, 1e-4, 0.9999, 32, 200), "coco_stuff": (183, 182, 10.0, 1e-4, 0.9999, 32, 100),
                "cityscapes": (35, 0, 5.0, 4e-4, 0.999, 20, 200)}
    for name, cfg in cfgs.items():
        m, t = cfg["model"], cfg["train"]
        got = (m["label_nc"] + m["contain_dontcare_label"], m["dontcare_class"], m["lambda_labelmix"], m["lr_g"],
               t["ema"]["decay"], t["batch_size"], t["epochs"])
        assert got == official[name], name
        assert (m["lr_d"], m["betas"], m["lambda_vgg"], t["ema"]["norm_stats_batches"]) == (4e-4, [0.0, 0.999], 0.0, 51)


def test_forward_and_loss_parity_with_the_official_modules():
    from ganzoo.nets.oasis_convert import discriminator_from_reference, fake_last, generator_from_reference
    from ganzoo.registry import DISCRIMINATORS, GENERATORS
    ref_g, ref_d, ref_losses = reference_modules()
    torch.manual_seed(0)
    theirs_g = ref_g.OASIS_Generator(ref_options())
    theirs_d = ref_d.OASIS_Discriminator(ref_options())  # the official D needs its 6 blocks
    ours_g = GENERATORS.build({"type": "oasis_generator", "label_nc": 5, "ngf": 2, "z_dim": 3, "num_blocks": 6,
                               "crop_size": 64, "norm": {"type": "spade", "param_free": "batch", "hidden": 128}})
    ours_d = DISCRIMINATORS.build({"type": "oasis_unet", "label_nc": 5, "num_blocks": 6})
    ours_g.load_state_dict(generator_from_reference(theirs_g.state_dict()))
    ours_d.load_state_dict(discriminator_from_reference(theirs_d.state_dict()))
    seg = one_hot(torch.randint(0, 5, (2, 64, 64)), 5)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    for training in (True, False):  # batch statistics and spectral-norm power iteration / running statistics
        theirs_g.train(training)
        ours_g.train(training)
        torch.manual_seed(1)
        expected = theirs_g(seg)  # draws its z inside: the same draw given to ours
        torch.manual_seed(1)
        torch.testing.assert_close(ours_g(seg, torch.randn(2, 3)), expected, atol=1e-5, rtol=0)
    # train mode (one power iteration each); the D costs seconds per 64x64 forward at the official widths
    torch.testing.assert_close(ours_d(image), fake_last(theirs_d(image).transpose(0, 1)).transpose(0, 1),
                               atol=1e-5, rtol=0)
    # the N+1 loss on the same logits (official: fake = channel 0), class 0 = dontcare
    computer = ref_losses.losses_computer(ref_options())
    ours = LOSSES.build({"type": "segmentation_gan", "dontcare": 0})
    logits, label = torch.randn(2, 6, 8, 8), one_hot(torch.randint(0, 5, (2, 8, 8)), 5)
    moved = fake_last(logits.transpose(0, 1)).transpose(0, 1)
    for real in (True, False):
        torch.testing.assert_close(ours.term(moved, label, real), computer.loss(logits, label, real))
    mask = torch.randint(0, 2, (2, 1, 8, 8)).float()
    a, b, c = torch.randn(3, 2, 6, 8, 8)
    torch.testing.assert_close(ours.labelmix_loss(mask, a, b, c), computer.loss_labelmix(mask, a, b, c))


# ---- the model -----------------------------------------------------------------------------------------

def tiny_model(**kw):
    from ganzoo.registry import MODELS
    cfg = {"type": "oasis", "label_nc": 3, "contain_dontcare_label": True, "dontcare_class": 3, "crop_size": 16,
           "generator": {"type": "oasis_generator", "ngf": 2, "z_dim": 4, "num_blocks": 3,
                         "norm": {"type": "spade", "param_free": "batch", "hidden": 8}},
           "discriminator": {"type": "oasis_unet", "num_blocks": 3, "width_scale": 0.0625}, **kw}
    return MODELS.build(cfg)


def test_discriminator_losses_n_plus_one_balance_and_labelmix_by_hand():
    torch.manual_seed(0)
    model = tiny_model(init_gain=None).eval()  # logits far from uniform; eval: no power iteration per D call
    label = torch.randint(0, 4, (2, 1, 16, 16))
    seg = one_hot(label[:, 0], 4)
    fake, real = torch.rand(2, 2, 3, 16, 16) * 2 - 1
    torch.manual_seed(5)
    losses = model.discriminator_losses(seg, fake, real)
    torch.manual_seed(5)
    mixed, mask = labelmix(seg, fake, real)
    pf, pr, pm = model.D(fake), model.D(real), model.D(mixed)
    weights = class_balance_weights(seg, dontcare=3)
    assert (weights[label[:, 0] == 3] == 0).all() and (weights[label[:, 0] != 3] > 0).all()
    d_real = (F.cross_entropy(pr, label[:, 0], reduction="none") * weights).mean()
    d_fake = F.cross_entropy(pf, torch.full_like(label[:, 0], 4))
    d_lm = 10.0 * ((pm - (mask * pr + (1 - mask) * pf)) ** 2).mean()
    torch.testing.assert_close(losses["d_real"], d_real, rtol=1e-4, atol=1e-6)
    assert (d_real - F.cross_entropy(pr, label[:, 0])).abs() > 1e-3  # the weights matter here
    torch.testing.assert_close(losses["d_fake"], d_fake, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses["d_labelmix"], d_lm, rtol=1e-4, atol=1e-6)
    assert "d_labelmix" not in tiny_model(lambda_labelmix=0.0).discriminator_losses(seg, fake, real)


def test_synthesize_is_multimodal_and_seeded():
    torch.manual_seed(0)
    model = tiny_model(init_gain=None).eval()  # the official init's outputs start near 0 for every z
    batch = {"label": torch.randint(0, 4, (2, 1, 16, 16))}
    a, b, c = model.sample(batch, seed=1), model.sample(batch, seed=1), model.sample(batch, seed=2)
    assert a.shape == (2, 3, 16, 16) and model.multimodal
    torch.testing.assert_close(a, b)
    assert (a - c).abs().mean() > 1e-3  # another seed, another image
    seg = one_hot(batch["label"][:, 0], 4)
    z = torch.randn(2, 4)
    torch.testing.assert_close(model.synthesize(seg, z=z), model.synthesize(seg, z=z[:, :, None, None].expand(-1, -1, 4, 4)))
    local = z[:, :, None, None].repeat(1, 1, 4, 4)
    local[:, :, :2] = torch.randn(2, 4, 1, 1)  # resample the noise of the top half only
    changed = (model.synthesize(seg, z=local) - model.synthesize(seg, z=z)).abs().mean(dim=(0, 1, 3))
    assert changed[:8].mean() > changed[8:].mean()
    with pytest.raises(ValueError, match="no style encoder"):
        model.sample({**batch, "style": torch.zeros(1, 3, 16, 16)})


def test_official_init_and_adam_settings():
    model = tiny_model()
    groups = model.param_groups()
    assert (groups["G"]["lr"], groups["D"]["lr"], groups["G"]["betas"]) == (1e-4, 4e-4, (0.0, 0.999))
    assert model.G.conv_img.weight.std() < 0.05  # xavier normal, gain 0.02 (PyTorch's default is ~0.1 here)
    assert tiny_model(init_gain=None).G.conv_img.weight.std() > 0.05


def test_ema_norm_stats_are_the_averaged_weights_own():
    from ganzoo.engine.ema import EMA
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = EMA(decay=0.5, norm_stats_batches=2)
    ema.update(net, 0)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net(torch.randn(4, 3, 8, 8))  # moves the live running stats
    ema.update(net, 1)
    live = copy.deepcopy(net.state_dict())
    data = [torch.randn(4, 3, 8, 8) for _ in range(2)]
    expected = copy.deepcopy(net)
    expected.load_state_dict({**expected.state_dict(), **ema.shadow})
    expected.train()
    with torch.no_grad():
        for x in data:
            expected(x)
    net.eval()
    ema.recompute_norm_stats(net, lambda: [net(x) for x in data])
    torch.testing.assert_close(ema.shadow["1.running_mean"], expected[1].running_mean)
    torch.testing.assert_close(ema.shadow["1.running_var"], expected[1].running_var)
    assert all(torch.equal(live[k], v) for k, v in net.state_dict().items()) and not net.training


# ---- through the CLIs ---------------------------------------------------------------------------------

TINY_OVERRIDES = ["model.init_gain=null", "model.label_nc=3", "model.contain_dontcare_label=true", "model.dontcare_class=3",
                  "model.crop_size=32", "model.generator.ngf=2", "model.generator.z_dim=4",
                  "model.generator.num_blocks=3", "model.generator.norm.hidden=8", "model.discriminator.num_blocks=3",
                  "model.discriminator.width_scale=0.0625", f"data.root={PAIRED}", "data.load_size=36",
                  "train.batch_size=2", "train.ema.norm_stats_batches=2", "run.log_every=1", "run.sample_every=0",
                  "run.progress=false", "run.device=cpu"]


def test_toy_config_trains_synthesizes_and_evaluates_through_the_tools(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"),
                             os.path.join(ROOT, "configs", "oasis_toy.yaml"), *TINY_OVERRIDES, "train.steps=2",
                             "run.ckpt_every=0", "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in open(run_dir / "log.jsonl")]
    assert [r["step"] for r in records] == [1, 2]
    assert {"g_adv", "d_fake", "d_real", "d_labelmix", "g_loss", "d_loss"} <= set(records[-1]["losses"])
    assert all(torch.isfinite(torch.tensor(list(r["losses"].values()))).all() for r in records)
    from ganzoo.cli.synthesize import main as synthesize
    out = tmp_path / "synth"
    assert synthesize(["--checkpoint", str(run_dir), "--labels", os.path.join(PAIRED, "labels"), "--n", "2",
                       "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["scene_1_00.png", "scene_1_01.png", "scene_2_00.png", "scene_2_01.png"]
    from PIL import Image
    first, second = (np.asarray(Image.open(out / f"scene_1_0{k}.png"), dtype=np.float64) for k in (0, 1))
    assert np.abs(first - second).mean() > 0.1  # the 3D noise: two images for one label map
    from ganzoo.cli.eval import evaluate_checkpoint
    # ganzoo-eval's path (EMA weights from the checkpoint): the noise makes samples of one label map differ
    metrics = evaluate_checkpoint(str(run_dir), None, [], [{"type": "diversity", "num_samples": 4, "batch_size": 2}],
                                  "cpu")
    assert metrics["diversity"] > 0.01
    import ganzoo
    from ganzoo.studio import handlers
    model = ganzoo.load(str(run_dir), device="cpu")
    images = handlers.spade_synthesize(model, np.full((32, 32), 1, np.int64), n=2, seed=0)
    assert len(images) == 2 and images[0].shape == (32, 32, 3) and np.abs(
        images[0].astype(float) - images[1].astype(float)).mean() > 0.1


def test_resume_equals_a_straight_run(tmp_path):
    """4 steps straight == 2 steps, stop, resume to 4: weights, EMA (with its recomputed BN statistics) and
    losses; the recompute runs at both checkpoints of either run."""
    from ganzoo.cli.train import make_trainer
    config = os.path.join(ROOT, "configs", "oasis_toy.yaml")
    overrides = TINY_OVERRIDES + ["train.steps=4", "run.ckpt_every=2"]
    straight = make_trainer(config, overrides, run_dir=str(tmp_path / "a"))
    assert straight.fit()["status"] == "done"
    first = make_trainer(config, overrides, run_dir=str(tmp_path / "b"))
    assert first.fit(stop_after=2)["status"] == "stopped"
    second = make_trainer(config, overrides, run_dir=str(tmp_path / "b"), resume=True)
    assert second.fit()["step"] == 4
    for a, b in ((straight.model.state_dict(), second.model.state_dict()), (straight.ema.shadow, second.ema.shadow)):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    # the last checkpoint's recompute: one more train-mode forward counted in the EMA copy's batch norms (at most
    # one pass over the data, as the official loop: the 2 toy images make 1 batch of 2)
    tracked = [k for k in straight.ema.shadow if k.endswith("num_batches_tracked")]
    live = straight.model.G.state_dict()
    assert tracked and all(straight.ema.shadow[k] == live[k] + 1 for k in tracked)
    logs = [[json.loads(line)["losses"] for line in open(tmp_path / run / "log.jsonl")] for run in ("a", "b")]
    assert logs[0] == logs[1]
