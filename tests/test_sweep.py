import json
import os

import pytest

from ganzoo.cli import sweep
from ganzoo.config import ConfigError
from ganzoo.sweep import grid, runs


def test_grid_product_zip_seeds_and_names():
    g = grid.parse_grid(["model.num_layers=4,5", "model.scale_factor=0.5,0.75"])
    assert len(grid.expand(g)) == 4
    assert grid.expand(g, zip_keys=True) == [["model.num_layers=4", "model.scale_factor=0.5"],
                                             ["model.num_layers=5", "model.scale_factor=0.75"]]
    assert len(grid.expand(g, repeat_seeds=2)) == 8
    assert grid.run_name(["model.num_layers=4", "run.seed=1"]) == "num_layers=4_seed=1"
    with pytest.raises(ConfigError):
        grid.expand(grid.parse_grid(["a=1,2", "b=1"]), zip_keys=True)


def test_local_sweep_skips_done_and_resumes_broken(tmp_path, monkeypatch):
    calls = []

    def fake_call(cmd, **kwargs):
        calls.append(cmd)
        return 0

    monkeypatch.setattr(runs.subprocess, "call", fake_call)
    out = str(tmp_path)
    os.makedirs(tmp_path / "num_layers=5" / "checkpoints")
    (tmp_path / "num_layers=5" / "checkpoints" / "step.pt").write_text("x")
    args = ["configs/singan_quick.yaml", "--grid", "model.num_layers=4,5", "--out", out, "--workers", "2"]
    assert sweep.main(args) == 0
    assert len(calls) == 2
    resumed = [c for c in calls if "--resume" in c]
    assert len(resumed) == 1 and resumed[0][-1].endswith("num_layers=5")
    fresh = [c for c in calls if "--resume" not in c][0]
    assert "model.num_layers=4" in fresh and any(a.startswith("train.threads=") for a in fresh)
    rows = json.load(open(tmp_path / "sweep.json"))
    assert [r["state"] for r in rows] == ["done", "done"]
    calls.clear()
    assert sweep.main(args) == 0
    assert calls == []  # both finished: nothing re-runs
    assert sweep.main(args + ["--set", "model.alpha=1"]) == 2  # same names, other setting: refused, nothing runs
    assert calls == []


TINY = ["model.max_size=24", "model.min_size=16", "model.steps_per_scale=3", "model.nfc=8", "model.min_nfc=8",
        "run.log_every=1", "run.sample_every=3", "run.ckpt_every=3", "run.sample_count=2",
        "train.schedule.milestones=[2]"]


def test_real_sweep_trains_skips_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    args = ["configs/singan_quick.yaml", "--grid", "model.num_layers=3,4", "--set", *TINY,
            "--out", str(out), "--workers", "2", "--threads", "1"]
    assert sweep.main(args) == 0
    run_dirs = [out / "num_layers=3", out / "num_layers=4"]
    for run in run_dirs:
        assert (run / runs.DONE).is_file() and (run / "checkpoints" / "step_00000006.pt").is_file()
    logs = {run: (run / "log.jsonl").read_text() for run in run_dirs}
    assert sweep.main(args) == 0  # everything done: no training at all
    assert {run: (run / "log.jsonl").read_text() for run in run_dirs} == logs
    broken = run_dirs[1]  # simulate a crash after the first checkpoint
    (broken / runs.DONE).unlink()
    (broken / "checkpoints" / "step_00000006.pt").unlink()
    (broken / "checkpoints" / "latest").write_text("step_00000003.pt")
    assert runs.state(str(broken)) == "broken"
    assert sweep.main(args) == 0
    assert (broken / "checkpoints" / "step_00000006.pt").is_file() and (broken / runs.DONE).is_file()
    resumed_log = (broken / "log.jsonl").read_text()
    assert resumed_log != logs[broken] and resumed_log.startswith(logs[broken].split("\n", 3)[0])  # steps 4-6 retrained
    assert [json.loads(line)["step"] for line in resumed_log.splitlines()][-1] == 6
    assert (run_dirs[0] / "log.jsonl").read_text() == logs[run_dirs[0]]
    rows = json.load(open(out / "sweep.json"))
    assert [r["state"] for r in rows] == ["done", "done"]


def test_sweep_file_command_line_wins_and_names(tmp_path):
    from ganzoo.sweep import spec
    for i in range(2):
        (tmp_path / f"im{i}.png").write_bytes(b"")  # listed, not read
    (tmp_path / "list.txt").write_text("im0.png\n# a comment\nim1.png\n")
    sweep_file = tmp_path / "study.yaml"
    sweep_file.write_text("config: configs/singan_quick.yaml\ngrid: {model.num_layers: [4, 5]}\n"
                          "set: {eval.metrics: [{type: swd, num_samples: 4}]}\nout: somewhere\nworkers: 2\n")
    args = sweep.build_parser().parse_args([str(sweep_file), "--out", str(tmp_path / "o"), "--images",
                                            str(tmp_path / "list.txt")])
    s = sweep.spec_from_args(args)
    assert s["out"] == str(tmp_path / "o") and s["workers"] == 2 and s["grid"] == [{"model.num_layers": [4, 5]}]
    settings = spec.settings(s)
    assert list(settings) == ["im0_num_layers=4", "im0_num_layers=5", "im1_num_layers=4", "im1_num_layers=5"]
    first = settings["im0_num_layers=4"]
    assert first[0] == "eval.metrics=[{type: swd, num_samples: 4}]"  # flow YAML the config parser reads back
    assert first[1] == f"data.image={tmp_path / 'im0.png'}" and first[2] == "model.num_layers=4"
    assert spec.swept_values(s)["im0_num_layers=5"] == {"model.num_layers": 5}  # not `set`, not the image
    one_at_a_time = spec.check({**spec.DEFAULTS, "config": "c.yaml", "out": "o",
                                "grid": [{"model.a": [1, 2]}, {"model.b": [0.5]}, {}]})
    assert list(spec.settings(one_at_a_time)) == ["a=1", "a=2", "b=0.5"]
    assert spec.swept_keys(one_at_a_time) == ["model.a", "model.b"]
    sweep_file.write_text("config: configs/singan_quick.yaml\ngird: {a: [1]}\n")
    with pytest.raises(ConfigError, match="did you mean 'grid'"):
        spec.load(str(sweep_file))
    with pytest.raises(ConfigError, match="nothing to sweep"):
        spec.check({**spec.DEFAULTS, "config": "c.yaml", "out": "o"})
    with pytest.raises(ConfigError, match="did you mean 'submitit'"):
        spec.check({**spec.DEFAULTS, "config": "c.yaml", "out": "o", "grid": {"a": [1]}, "executor": "submit"})


def test_index_page_plots_each_metric_against_each_key(tmp_path):
    from ganzoo.sweep import page
    rows = [{"name": f"n={n}_m={m}", "overrides": "", "model.n": n, "model.m": m, "state": "done",
             "swd": float(n + (m == "b")), "train_seconds": 3.0, "parameters": 1234, "samples": "samples/step_1.png"}
            for n in (1, 2, 3) for m in ("a", "b")]
    page.write_index(str(tmp_path), rows, ["model.n", "model.m"])
    html = (tmp_path / "index.html").read_text()
    assert html.count("<svg") == 2 and "swd vs model.n" in html and "swd vs model.m" in html
    assert html.count("<circle") == 12 and ">a</text>" in html and ">b</text>" in html  # categorical axis
    assert html.count("<tr>") == 7 and "n=2_m=b/samples/step_1.png" in html and "1,234" in html
    # the line joins the means over runs with the same value: at n=1 halfway between its two dots (swd 1 and 2)
    import re
    panel = page.plot(rows, "model.n", "swd")
    first = re.search(r'points="([\d.]+),([\d.]+)', panel)
    dots = [float(y) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', panel) if x == first.group(1)]
    assert len(dots) == 2 and float(first.group(2)) == pytest.approx(sum(dots) / 2)


def _tiny_images(folder, count):
    from PIL import Image
    folder.mkdir()
    photo = Image.open("ganzoo/assets/chelsea.png").convert("RGB")
    for i in range(count):
        photo.crop((40 * i, 0, 40 * i + 160, 120)).resize((32, 24)).save(folder / f"photo{i}.png")
    return folder


def test_one_singan_per_image_on_two_workers_then_the_papers_table(tmp_path):
    images = _tiny_images(tmp_path / "images", 3)
    out = tmp_path / "per_image"
    args = ["configs/singan_quick.yaml", "--images", str(images), "--set", *TINY, "--out", str(out),
            "--workers", "2", "--threads", "1", "--protocol-samples", "4", "--sifid-weights", "random",
            "--device", "cpu"]
    with pytest.warns(UserWarning, match="RANDOM"):
        assert sweep.main(args) == 0
    for i in range(3):
        assert (out / f"photo{i}" / runs.DONE).is_file()
    table = json.load(open(out / "single_image.json"))
    assert [r["image"] for r in table["images"]] == ["photo0", "photo1", "photo2"]
    for key in ("sifid_N", "sifid_N-1", "diversity_N", "diversity_N-1"):
        values = [r[key] for r in table["images"]]
        assert table["mean"][key] == pytest.approx(sum(values) / 3)
    assert "not comparable" in table["mean"]["sifid_warning"]
    # each row is the protocol on that image's own model
    import ganzoo
    from ganzoo.metrics import single_image
    from ganzoo.metrics.sifid import SIFIDFeatures
    with pytest.warns(UserWarning):
        features = SIFIDFeatures(64, "random", "cpu")
    model = ganzoo.load(str(out / "photo1"), device="cpu")
    assert model.reals[-1].shape[-1] == 24  # trained on its own image (32x24 -> max_size 24)
    again = single_image.evaluate_model(model, features, num_samples=4)
    assert again["diversity_N"] == pytest.approx(table["images"][1]["diversity_N"], rel=1e-6)
    md = (out / "single_image.md").read_text()
    assert "| scale N |" in md and "| scale N-1 |" in md and "| photo2 |" in md


def test_submitit_executor_through_its_local_backend(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "s"
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("config: configs/singan_quick.yaml\ngrid: {model.num_layers: [3]}\nexecutor: submitit\n"
                          "slurm: {cluster: local, timeout_min: 10}\nthreads: 1\n"
                          f"out: {out}\nset: {{{', '.join(t.replace('=', ': ', 1) for t in TINY)}}}\n")
    assert sweep.main([str(sweep_file)]) == 0
    assert (out / "num_layers=3" / runs.DONE).is_file() and os.path.isdir(out / "_submitit")
    rows = json.load(open(out / "sweep.json"))
    assert rows[0]["state"] == "done" and rows[0]["parameters"] > 0


def test_torchrun_ranks_share_the_settings(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "0",
           "-m", "ganzoo.cli.sweep", "configs/singan_quick.yaml", "--grid", "model.num_layers=3,4",
           "--set", *TINY, "--executor", "torchrun", "--threads", "1", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.load(open(out / "sweep.json"))
    assert [r["state"] for r in rows] == ["done", "done"]
    logs = {name: (out / name / "sweep.log").read_text() for name in ("num_layers=3", "num_layers=4")}
    assert all("Traceback" not in text for text in logs.values())
    assert not os.listdir(out / "_ranks")  # rank 0 collected every rank's marker
