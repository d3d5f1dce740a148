"""The config pipeline: YAML parsing, ``options.load_config`` (defaults, deep merge, overrides, links, run.dir)."""
import subprocess
import sys

import pytest

from ganzoo import config
from ganzoo.config import ConfigError
from ganzoo.engine.options import load_config


class FakeModel:
    """A model type for the pipeline: only its class attributes are read by load_config."""
    DEFAULTS = {"lr": 1.0e-4, "label_nc": 150, "crop_size": 256,
                "generator": {"type": "gen_a", "ngf": 64, "norm": {"type": "spade", "hidden": 128}},
                "encoder": None}
    DATA_KEYS = ("label_nc", "crop_size")


class FakeData:
    DEFAULTS = {"root": None, "label_nc": 13, "crop_size": 256, "flip": True}


MODEL = "tests.test_config:FakeModel"
DATA = "tests.test_config:FakeData"


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def fake(tmp_path, model="", data=""):
    return write(tmp_path, f"model: {{type: '{MODEL}'{model}}}\ndata: {{type: '{DATA}'{data}}}\n")


def test_scientific_notation_parses_as_float_without_touching_pyyaml(tmp_path):
    import yaml
    raw = config.load_yaml(write(tmp_path, "model: {type: m, lr: 1e-4, n: 3, s: 'x', big: 2E+3}\n"))
    assert raw["model"]["lr"] == pytest.approx(1e-4) and isinstance(raw["model"]["lr"], float)
    assert raw["model"]["n"] == 3 and raw["model"]["big"] == pytest.approx(2000.0)
    assert yaml.safe_load("a: 1e-4")["a"] == "1e-4"  # PyYAML's own loader is unchanged


def test_load_config_fills_every_default_and_is_idempotent(tmp_path):
    cfg = load_config(fake(tmp_path))
    assert set(cfg) == set(config.SECTIONS)
    assert cfg["model"]["generator"] == FakeModel.DEFAULTS["generator"]
    assert cfg["train"]["precision"] == "fp32" and cfg["run"]["seed"] == 0 and cfg["data"]["num_workers"] == 0
    assert cfg["data"]["flip"] is True
    assert load_config(cfg) == cfg
    out = tmp_path / "resolved.yaml"
    config.dump(cfg, str(out))
    assert load_config(str(out)) == cfg


def test_a_saved_config_rebuilds_the_same_model_after_a_default_changes(tmp_path, monkeypatch):
    cfg = load_config(fake(tmp_path))
    saved = tmp_path / "config.yaml"
    config.dump(cfg, str(saved))
    from ganzoo.registry import MODELS
    defaults = MODELS.get(MODEL).DEFAULTS  # the class as the pipeline imports it
    monkeypatch.setitem(defaults, "lr", 5.0)
    monkeypatch.setitem(defaults, "generator", {"type": "gen_a", "ngf": 1, "norm": {"type": "spade"}})
    assert load_config(str(saved)) == cfg
    assert load_config(fake(tmp_path))["model"]["lr"] == pytest.approx(5.0)  # a new run gets the new default


def test_one_key_of_a_part_keeps_the_others(tmp_path):
    cfg = load_config(fake(tmp_path, model=", generator: {ngf: 32, norm: {hidden: 8}}"))
    assert cfg["model"]["generator"] == {"type": "gen_a", "ngf": 32, "norm": {"type": "spade", "hidden": 8}}
    other = load_config(fake(tmp_path, model=", generator: {type: gen_b, width: 3}"))
    assert other["model"]["generator"] == {"type": "gen_b", "width": 3}  # another part: no gen_a defaults


def test_overrides_need_no_plus_for_any_default_key(tmp_path):
    cfg = load_config(fake(tmp_path), ["train.grad_clip=1.0", "model.lr=2e-4", "model.generator.ngf=16",
                                       "model.encoder={type: enc, z_dim: 8}", "train.optim.G.lr=3e-4",
                                       "+train.schedule={type: step, step_size: 5}"])
    assert cfg["train"]["grad_clip"] == pytest.approx(1.0) and cfg["model"]["lr"] == pytest.approx(2e-4)
    assert cfg["model"]["generator"]["ngf"] == 16 and cfg["model"]["encoder"] == {"type": "enc", "z_dim": 8}
    assert cfg["train"]["optim"] == {"G": {"lr": pytest.approx(3e-4)}}
    assert cfg["train"]["schedule"]["step_size"] == 5


def test_unknown_keys_name_the_closest(tmp_path):
    path = fake(tmp_path)
    with pytest.raises(ConfigError, match=r"unknown config key 'model.generator.ngff'.*'ngf'"):
        load_config(path, ["model.generator.ngff=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, ["model.lr"])
    with pytest.raises(ConfigError, match=r"unknown key model\.lrr.*'lr'"):
        load_config(fake(tmp_path, model=", lrr: 1"))
    with pytest.raises(ConfigError, match=r"train\.grad_clp.*'grad_clip'"):
        load_config(path, ["train.grad_clp=1"])


def test_misspelled_section_suggests_the_fixed_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(fake(tmp_path), ["modle.max_size=40"])
    assert "did you mean 'model.max_size'?" in str(err.value) and "+" not in str(err.value)
    with pytest.raises(ConfigError, match="'trian'.*'train'"):
        load_config(write(tmp_path, "model: {type: m}\ntrian: {}\n"))
    with pytest.raises(ConfigError, match="'model' section"):
        load_config(write(tmp_path, "train: {}\n"))


def test_trainer_key_typo_is_reported_before_torch_is_imported(tmp_path):
    path = fake(tmp_path)
    code = (f"import sys\nfrom ganzoo.engine.options import load_config\ntry:\n"
            f"    load_config({path!r}, ['train.grad_clp=1'])\nexcept ValueError as err:\n"
            f"    print(type(err).__name__, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ConfigError", "False"]


def test_shared_facts_are_stated_once(tmp_path):
    cfg = load_config(fake(tmp_path, model=", label_nc: 182"))
    assert cfg["data"]["label_nc"] == 182 and cfg["model"]["label_nc"] == 182
    cfg = load_config(fake(tmp_path, data=", label_nc: 35"))
    assert cfg["model"]["label_nc"] == 35
    cfg = load_config(fake(tmp_path))  # neither: the model's default (the paper's) fills the data
    assert cfg["data"]["label_nc"] == 150
    cfg = load_config(fake(tmp_path, model=", label_nc: 20", data=", label_nc: 20"))
    assert cfg["data"]["label_nc"] == 20
    with pytest.raises(ConfigError, match=r"model\.label_nc=20 conflicts with data\.label_nc=21"):
        load_config(fake(tmp_path, model=", label_nc: 20", data=", label_nc: 21"))
    with pytest.raises(ConfigError, match=r"model\.crop_size=64 conflicts with data\.crop_size=128"):
        load_config(fake(tmp_path, model=", crop_size: 64"), ["data.crop_size=128"])


def test_run_dir_default_is_the_config_name(tmp_path):
    assert load_config(write(tmp_path, f"model: {{type: '{MODEL}'}}\n", name="my_exp.yaml"))["run"]["dir"] \
        == "runs/my_exp"
    assert load_config(fake(tmp_path), ["run.dir=elsewhere"])["run"]["dir"] == "elsewhere"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "model:\n  type: m\n  bad: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert path in str(err.value) and "line" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))


def test_check_keys_deep_merges_and_rejects_unknown():
    defaults = {"lr": 1.0, "betas": [0, 0.9], "vgg": {"weights": None, "normalize_input": False}}
    merged = config.check_keys({"lr": 0.5, "vgg": {"weights": "w.pth"}}, defaults, "model")
    assert merged == {"lr": 0.5, "betas": [0, 0.9], "vgg": {"weights": "w.pth", "normalize_input": False}}
    assert defaults["vgg"]["weights"] is None  # defaults untouched
    with pytest.raises(ConfigError, match=r"train\.betass.*'betas'"):
        config.check_keys({"betass": 1}, {"lr": 1.0, "betas": 1}, "train")


def test_every_shipped_config_loads_complete_and_round_trips():
    import glob
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in sorted(glob.glob(os.path.join(root, "configs", "*.yaml"))):
        cfg = load_config(path)
        assert cfg["run"]["dir"] == os.path.join("runs", os.path.splitext(os.path.basename(path))[0]), path
        assert load_config(cfg) == cfg, path


def test_import_ganzoo_is_light():
    code = ("import sys, ganzoo; heavy = [m for m in ('torchvision', 'lpips', 'pytorch_fid', 'matplotlib', "
            "'tensorboard') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
