import subprocess
import sys

import pytest

from ganzoo import config
from ganzoo.config import ConfigError


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_scientific_notation_parses_as_float_without_touching_pyyaml(tmp_path):
    import yaml
    cfg = config.load(write(tmp_path, "model: {type: m, lr: 1e-4, n: 3, s: 'x', big: 2E+3}\n"))
    assert cfg["model"]["lr"] == pytest.approx(1e-4) and isinstance(cfg["model"]["lr"], float)
    assert cfg["model"]["n"] == 3 and cfg["model"]["big"] == 2000.0
    assert yaml.safe_load("a: 1e-4")["a"] == "1e-4"  # PyYAML's own loader is unchanged
    assert set(cfg) == set(config.SECTIONS)


def test_overrides_set_nested_values_parsed_as_yaml(tmp_path):
    path = write(tmp_path, "model: {type: m, generator: {ngf: 64}}\ntrain: {lr: 0.1}\n")
    cfg = config.load(path, ["train.lr=2e-4", "model.generator.ngf=32", "train.lr=[1, 2]"])
    assert cfg["model"]["generator"]["ngf"] == 32 and cfg["train"]["lr"] == [1, 2]
    cfg = config.load(path, ["+train.extra.deep=on"])
    assert cfg["train"]["extra"]["deep"] is True


def test_unknown_override_key_names_closest(tmp_path):
    path = write(tmp_path, "model: {type: m, generator: {ngf: 64}}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'model.generator.ngff'.*'ngf'.*\+"):
        config.load(path, ["model.generator.ngff=3"])
    with pytest.raises(ConfigError, match="key=value"):
        config.load(path, ["model.generator.ngf"])


def test_unknown_section_and_missing_model(tmp_path):
    with pytest.raises(ConfigError, match="'trian'.*'train'"):
        config.load(write(tmp_path, "model: {type: m}\ntrian: {}\n"))
    with pytest.raises(ConfigError, match="'model' section"):
        config.load(write(tmp_path, "train: {}\n"))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "model:\n  type: m\n  bad: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert path in str(err.value) and "line" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        config.load(str(tmp_path / "missing.yaml"))


def test_check_keys_merges_defaults_and_rejects_unknown():
    merged = config.check_keys({"lr": 0.5}, {"lr": 1.0, "betas": [0, 0.9]}, "train")
    assert merged == {"lr": 0.5, "betas": [0, 0.9]}
    with pytest.raises(ConfigError, match=r"train\.betass.*'betas'"):
        config.check_keys({"betass": 1}, {"lr": 1.0, "betas": 1}, "train")


def test_dump_round_trip(tmp_path):
    cfg = config.load(write(tmp_path, "model: {type: m, lr: 1.0e-4, sizes: [1, 2]}\nrun: {dir: x}\n"))
    out = tmp_path / "resolved.yaml"
    config.dump(cfg, str(out))
    assert config.load(str(out)) == cfg


def test_import_ganzoo_is_light():
    code = ("import sys, ganzoo; heavy = [m for m in ('torchvision', 'lpips', 'pytorch_fid', 'matplotlib', "
            "'tensorboard') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
