"""What every command-line tool shares: one-line user errors, tracebacks for bugs, --debug, the device flag,
path checks before torch is imported, no outputs left by a failed command, ``python -m ganzoo list``."""
import argparse
import json
import os
import subprocess
import sys

import pytest
import torch

from ganzoo.cli.common import run_cli
from ganzoo.device import pick_device, to_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tool(error):
    def run(args):
        raise error
    return argparse.ArgumentParser(prog="tool"), run


@pytest.mark.parametrize("error", [ValueError("bad --n"), FileNotFoundError("x.png not found")])
def test_user_errors_are_one_line_and_exit_2(error, capsys):
    assert run_cli(*tool(error), []) == 2
    assert capsys.readouterr().err == f"error: {error}\n"


@pytest.mark.parametrize("error", [KeyError("x"), TypeError("f() takes 1 argument"), AttributeError("a")])
def test_bugs_keep_their_traceback(error):
    with pytest.raises(type(error)):
        run_cli(*tool(error), [])


def test_debug_shows_the_traceback_of_a_user_error():
    with pytest.raises(ValueError, match="bad"):
        run_cli(*tool(ValueError("bad")), ["--debug"])


def test_debug_after_a_subcommand():
    from ganzoo.cli import singan
    with pytest.raises(FileNotFoundError, match="checkpoint nowhere.pt not found"):
        singan.main(["sr", "--checkpoint", "nowhere.pt", "--out", "o", "--debug"])
    with pytest.raises(FileNotFoundError):
        singan.main(["--debug", "sr", "--checkpoint", "nowhere.pt", "--out", "o"])


def test_pick_device():
    assert pick_device("auto") == pick_device(None) == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^--device 'gpu' is not a device \(use auto, cpu, cuda"):
        pick_device("gpu")
    with pytest.raises(ValueError, match="^run.device 'cuda:x' is not a device"):
        pick_device("cuda:x", what="run.device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device 'cuda': CUDA is not available here"):
            pick_device("cuda")


def test_a_bad_device_flag_is_a_one_line_error(tmp_path, capsys):
    from ganzoo.cli.fid import main
    (tmp_path / "a").mkdir()
    assert main([str(tmp_path / "a"), str(tmp_path / "a"), "--device", "gpu"]) == 2
    assert capsys.readouterr().err == "error: --device 'gpu' is not a device (use auto, cpu, cuda, cuda:1, ...)\n"


def test_to_device_channels_last_images_only():
    batch = {"image": torch.rand(2, 3, 4, 5), "label": torch.zeros(2, 1, 4, 5, dtype=torch.long), "path": ["a", "b"]}
    moved = to_device(batch, torch.device("cpu"), channels_last=True)
    assert moved["image"].is_contiguous(memory_format=torch.channels_last)
    assert not moved["image"].is_contiguous()
    assert moved["label"].is_contiguous() and moved["path"] == ["a", "b"]
    torch.testing.assert_close(moved["image"], batch["image"])
    assert to_device(batch, "cpu")["image"].is_contiguous()


# Each call must fail on a path or a trainer key before torch is imported: faster than `import torch`.
NO_TORCH_CALLS = """
import json, sys
from ganzoo.cli import benchmark, convert_spade, eval, fid, semantic_pyramid, sifid, singan, synthesize
config = sys.argv[1]
open("ckpt.pt", "w").close()
codes = [
    fid.main(["nowhere_a", "nowhere_b"]),
    sifid.main(["--path2real", "nowhere_r", "--path2fake", "nowhere_f"]),
    eval.main(["nowhere.yaml", "--checkpoint", "nowhere.pt"]),
    singan.main(["harmonization", "--checkpoint", "nowhere.pt", "--out", "o", "--ref", "r.png", "--scale", "1"]),
    synthesize.main(["--checkpoint", "nowhere.pt", "--labels", "l", "--out", "o"]),
    semantic_pyramid.main(["generate", "nowhere.pt", "--image", "a.png"]),
    convert_spade.main(["nowhere_net_G.pth", "--out", "o.pt"]),
    benchmark.main(["nowhere.yaml"]),
    eval.main([config, "train.grad_clipp=1", "--checkpoint", "ckpt.pt"]),
    benchmark.main([config, "train.grad_clipp=1"]),
]
print(json.dumps({"codes": codes, "torch": "torch" in sys.modules}))
"""


def test_path_errors_come_before_torch_is_imported(tmp_path):
    config = os.path.join(ROOT, "configs", "singan_quick.yaml")
    proc = subprocess.run([sys.executable, "-c", NO_TORCH_CALLS, config], capture_output=True, text=True,
                          cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"codes": [2] * 10, "torch": False}
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 10 and all(line.startswith("error: ") for line in errors)
    assert all("not found" in line for line in errors[:8])
    assert all("unknown config key 'train.grad_clipp'" in line for line in errors[8:])
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_a_missing_ref_is_reported_as_the_ref(tmp_path, capsys):
    from ganzoo.cli.singan import main
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"")
    out = tmp_path / "out"
    assert main(["editing", "--checkpoint", str(checkpoint), "--out", str(out), "--ref", str(tmp_path / "r.png"),
                 "--scale", "1"]) == 2
    assert capsys.readouterr().err == f"error: reference image {tmp_path / 'r.png'} not found\n"
    (tmp_path / "r.png").write_bytes(b"")
    assert main(["editing", "--checkpoint", str(checkpoint), "--out", str(out), "--ref", str(tmp_path / "r.png"),
                 "--scale", "1"]) == 2
    assert capsys.readouterr().err == f"error: mask {tmp_path / 'r_mask.png'} not found (give --mask)\n"
    assert not out.exists()


def test_ganzoo_list_prints_whole_first_sentences(capsys):
    from ganzoo.__main__ import main
    from ganzoo.registry import first_sentence
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    # this docstring's first sentence runs over two lines
    assert ("multiscale_patchgan          ``num_d`` PatchGANs on the input and its 3x3/stride-2 average-pooled "
            "copies; returns one feature list per scale (the format of the feature-matching and GAN losses).") in text
    assert first_sentence("Mean (e.g. of\n  samples) here. Second.\n\nMore.") == "Mean (e.g. of samples) here."
    assert first_sentence("No stop\nat all") == "No stop at all"


def test_spade_toy_data_writes_paired_folders_and_checks_its_textures_first(tmp_path, capsys):
    import numpy as np
    from PIL import Image
    from tools import spade_toy_data
    texture = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(texture)
    out = tmp_path / "toy"
    assert spade_toy_data.main([str(out), str(texture), str(tmp_path / "none.png")]) == 2
    assert capsys.readouterr().err == f"error: texture image {tmp_path / 'none.png'} not found\n"
    assert not out.exists()
    assert spade_toy_data.main([str(out), str(texture), str(texture), "--count", "3", "--size", "16"]) == 0
    labels = [np.asarray(Image.open(out / "labels" / f"scene_{i:04d}.png")) for i in range(3)]
    assert sorted(os.listdir(out / "images")) == [f"scene_{i:04d}.png" for i in range(3)]
    assert all(label.shape == (16, 16) and label.max() <= 2 for label in labels) and max(map(np.max, labels)) > 0
