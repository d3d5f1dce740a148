"""SPADE tools: official-checkpoint conversion, synthesis CLI, training through tools/train.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.engine.checkpoint import FORMAT
from ganzoo.nets.spade_convert import from_reference, options_from_checkpoint, read_opt_txt, to_reference
from ganzoo.registry import MODELS

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRED = os.path.join(ROOT, "tests", "data", "paired_tiny")


def tiny_cfg(**kw):
    cfg = {"type": "spade", "label_nc": 3, "contain_dontcare_label": True, "crop_size": 32,
           "generator": {"type": "spade_generator", "ngf": 4,
                         "norm": {"type": "spade", "param_free": "batch", "hidden": 8}},
           "discriminator": {"type": "multiscale_patchgan", "ndf": 4}, "lambda_vgg": 0.0}
    cfg.update(kw)
    return cfg


def save_ganzoo(model, cfg, path):
    torch.save({"format": FORMAT, "model": model.state_dict(), "config": {"model": cfg}}, path)


def test_official_key_names_and_round_trip():
    model = MODELS.build(tiny_cfg(use_instance=True, encoder={"type": "spade_vae_encoder", "z_dim": 8, "ndf": 2,
                                                               "input_size": 16}))
    expected = {  # official names (NVlabs/SPADE#7, #115) for modules of each kind
        "G": ["fc.weight", "head_0.conv_0.weight_orig", "head_0.conv_0.weight_u", "head_0.conv_1.weight_v",
              "head_0.norm_0.mlp_shared.0.weight", "head_0.norm_1.mlp_gamma.bias", "up_0.conv_s.weight_orig",
              "up_0.norm_s.mlp_beta.weight", "up_0.norm_0.param_free_norm.running_var", "conv_img.bias"],
        "D": ["discriminator_0.model0.0.weight", "discriminator_0.model1.0.0.weight_orig",
              "discriminator_1.model3.0.0.weight_u", "discriminator_1.model4.0.bias"],
        "E": ["layer1.0.weight_orig", "layer2.0.weight_v", "fc_mu.weight", "fc_var.bias"],
    }
    for name, keys in expected.items():
        net = getattr(model, name)
        state = net.state_dict()
        official = to_reference(state)
        assert set(keys) <= set(official), sorted(set(keys) - set(official))
        assert not any("parametrizations" in k or ".block_" in k for k in official)
        back, unknown = from_reference(official, state.keys())
        assert unknown == [] and back.keys() == state.keys()
        assert all(torch.equal(back[k], state[k]) for k in state)


def test_old_spectral_norm_state_gives_same_outputs():
    """A conv saved with torch.nn.utils.spectral_norm (the official API) loads into the ganzoo conv
    (parametrizations API) and gives the same eval-mode output."""
    torch.manual_seed(0)
    old = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 5, 3, padding=1))
    old.train()
    for _ in range(3):  # move u, v away from their start
        old(torch.randn(1, 3, 8, 8))
    from ganzoo.layers.conv import conv2d
    new = conv2d(3, 5, 3, spectral_norm=True)
    state = {f"conv.{k}": v for k, v in old.state_dict().items()}
    converted, unknown = from_reference(state, {f"conv.{k}" for k in new.state_dict()})
    assert unknown == []
    new.load_state_dict({k[len("conv."):]: v for k, v in converted.items()})
    old.eval(), new.eval()
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(old(x), new(x), atol=1e-6)


def write_official(tmp_path, model, opt_lines=None):
    run = tmp_path / "checkpoints" / "mine"
    run.mkdir(parents=True)
    torch.save(to_reference(model.G.state_dict()), run / "latest_net_G.pth")
    torch.save(to_reference(model.D.state_dict()), run / "latest_net_D.pth")
    if opt_lines:
        (run / "opt.txt").write_text("----------------- Options ---------------\n" + "".join(
            f"{k:>25}: {str(v):<30}\t[default: x]\n" for k, v in opt_lines.items()) + "----------------- End -----\n")
    return run


def test_options_from_official_files(tmp_path):
    model = MODELS.build(tiny_cfg())
    run = write_official(tmp_path, model, {"label_nc": 3, "contain_dontcare_label": True, "no_instance": True,
                                           "num_upsampling_layers": "normal", "crop_size": 32, "aspect_ratio": 1.0})
    assert read_opt_txt(run / "opt.txt")["no_instance"] is True
    cfg = options_from_checkpoint(str(run / "latest_net_G.pth"))
    assert cfg["label_nc"] == 3 and cfg["contain_dontcare_label"] and not cfg["use_instance"]
    assert cfg["generator"]["ngf"] == 4 and cfg["generator"]["norm"]["param_free"] == "sync_batch"
    assert "encoder" not in cfg and cfg["crop_size"] == 32
    os.remove(run / "opt.txt")
    with pytest.raises(ValueError, match="opt.txt"):
        options_from_checkpoint(str(run / "latest_net_G.pth"))


def run_cli(module, argv):
    mod = __import__(f"ganzoo.cli.{module}", fromlist=["main"])
    return mod.main(argv)


def test_convert_cli_and_synthesize_official_generator(tmp_path, capsys):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    model.train()
    batch = {"label": torch.randint(0, 4, (2, 1, 32, 32)), "image": torch.rand(2, 3, 32, 32) * 2 - 1}
    with torch.no_grad():
        model.G(model.condition(batch, torch.device("cpu"))[1])  # BN running statistics, u / v moved
    run = write_official(tmp_path, model, {"label_nc": 3, "contain_dontcare_label": True, "no_instance": True,
                                           "crop_size": 32})
    out_ckpt = tmp_path / "converted.pt"
    assert run_cli("convert_spade", [str(run / "latest_net_G.pth"), "--discriminator", str(run / "latest_net_D.pth"),
                                     "--out", str(out_ckpt)]) == 0
    import ganzoo
    loaded = ganzoo.load(str(out_ckpt), device="cpu")
    model.eval()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # synthesis straight from the official file: same pixels as our model
    labels = tmp_path / "labels"
    labels.mkdir()
    label = np.zeros((32, 32), np.uint8)
    label[8:24, 4:20] = 2
    label[:4] = 255
    Image.fromarray(label, mode="L").save(labels / "scene.png")
    out = tmp_path / "out"
    assert run_cli("synthesize", ["--checkpoint", str(run / "latest_net_G.pth"), "--labels", str(labels / "scene.png"),
                                  "--out", str(out), "--device", "cpu"]) == 0
    got = np.asarray(Image.open(out / "scene.png"))
    label_t = torch.from_numpy(label.astype(np.int64))
    label_t[label_t == 255] = 3
    expected = model.sample({"label": label_t[None, None]})[0]
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert got.shape == (32, 32, 3) and np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    # back to the official layout
    assert run_cli("convert_spade", [str(out_ckpt), "--to-reference", str(tmp_path / "back")]) == 0
    back = torch.load(tmp_path / "back" / "latest_net_G.pth", weights_only=True)
    original = torch.load(run / "latest_net_G.pth", weights_only=True)
    assert back.keys() == original.keys() and all(torch.equal(back[k], original[k]) for k in back)
    # errors are one line
    assert run_cli("synthesize", ["--checkpoint", str(out_ckpt), "--labels", str(labels), "--style",
                                  str(labels / "scene.png"), "--out", str(out)]) == 2
    assert "needs a model trained with the VAE" in capsys.readouterr().err


def test_synthesize_vae_style_and_n(tmp_path, capsys):
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder={"type": "spade_vae_encoder", "z_dim": 8, "ndf": 2, "input_size": 16})
    model = MODELS.build(cfg).eval()
    ckpt = tmp_path / "vae.pt"
    save_ganzoo(model, cfg, ckpt)
    labels = os.path.join(PAIRED, "labels")
    out = tmp_path / "many"
    assert run_cli("synthesize", ["--checkpoint", str(ckpt), "--labels", labels, "--n", "3", "--out", str(out)]) == 0
    files = sorted(os.listdir(out))
    assert files == [f"scene_{i}_{k:02d}.png" for i in (1, 2) for k in range(3)]
    a, b = (np.asarray(Image.open(out / f)) for f in files[:2])
    assert not np.array_equal(a, b)  # diverse outputs
    style = os.path.join(PAIRED, "images", "scene_1.png")
    styled = tmp_path / "styled"
    assert run_cli("synthesize", ["--checkpoint", str(ckpt), "--labels", os.path.join(labels, "scene_2.png"),
                                  "--style", style, "--out", str(styled), "--keep-size"]) == 0
    assert np.asarray(Image.open(styled / "scene_2.png")).shape == (32, 32, 3)
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.full((8, 8), 9, np.uint8), mode="L").save(bad / "b.png")
    never = tmp_path / "never"
    assert run_cli("synthesize", ["--checkpoint", str(ckpt), "--labels", str(bad), "--out", str(never)]) == 2
    err = capsys.readouterr().err
    assert "b.png: label value 9" in err and err.count("\n") == 1
    assert not never.exists()   # a failed command leaves no empty --out behind


def test_build_from_reference_needs_the_encoder_of_a_vae_generator(tmp_path):
    from ganzoo.nets.spade_convert import build_from_reference
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(encoder={"type": "spade_vae_encoder", "z_dim": 8, "ndf": 4, "input_size": 16}))
    run = write_official(tmp_path, model, {"label_nc": 3, "contain_dontcare_label": True, "no_instance": True,
                                           "crop_size": 32})
    generator = str(run / "latest_net_G.pth")
    with pytest.raises(FileNotFoundError, match="latest_net_G.pth is a VAE generator: its encoder .*latest_net_E.pth"):
        build_from_reference(generator)
    torch.save(to_reference(model.E.state_dict()), run / "latest_net_E.pth")
    built, cfg = build_from_reference(generator, str(run / "latest_net_D.pth"), overrides=["+encoder.input_size=16"])
    assert cfg["encoder"] == {"type": "spade_vae_encoder", "z_dim": 8, "ndf": 4, "input_size": 16}
    for name in ("G", "D", "E"):
        mine, theirs = getattr(built, name).state_dict(), getattr(model, name).state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name


def test_tiny_config_trains_through_tools_train(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["model.label_nc=3", "model.contain_dontcare_label=true", "model.use_instance=true",
                 "model.crop_size=32", "model.generator.ngf=4", "model.discriminator.ndf=8",
                 f"data.root={PAIRED}", "data.instance_dir=instances", "data.label_nc=3",
                 "data.contain_dontcare_label=true", "data.crop_size=32", "data.load_size=36",
                 "train.steps=3", "train.batch_size=2", "run.log_every=1", "run.sample_every=0", "run.ckpt_every=0",
                 "run.progress=false", "run.device=cpu"]
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"),
                             os.path.join(ROOT, "configs", "spade_toy.yaml"), *overrides, "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # no waiting at thread barriers
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in open(run_dir / "log.jsonl")]
    assert [r["step"] for r in records][-1] == 3
    assert {"g_gan", "g_feat", "d_loss", "g_loss"} <= set(records[-1]["losses"])
    assert all(np.isfinite(v) for v in records[-1]["losses"].values())
    out = tmp_path / "synth"
    assert run_cli("synthesize", ["--checkpoint", str(run_dir), "--labels", os.path.join(PAIRED, "labels"),
                                  "--instances", os.path.join(PAIRED, "instances"), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["scene_1.png", "scene_2.png"]
