"""Every switch a config offers works for every registered model: a few training steps through
``ganzoo-train``'s own build path for each model x precision x channels_last, and each model compiled.

Compile cases use torch.compile's ``aot_eager`` backend: the same Dynamo capture and aot_autograd
differentiation as the default inductor backend (aot_autograd is what cannot differentiate a compiled graph
twice, hence ``double_backward_networks``), without the C++ code generation that takes minutes per network
on a CPU. One case compiles the toy GAN with inductor itself.
"""
import json
import os

import pytest
import torch
import yaml

from ganzoo.cli.train import make_trainer
from ganzoo.engine.distributed import unwrap
from ganzoo.registry import MODELS

pytestmark = pytest.mark.filterwarnings("ignore:precision bf16 on the CPU", "ignore:.*weights=random")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRED = os.path.join(ROOT, "tests", "data", "paired_tiny")

# the smallest config of each registered model that trains (a new model without one fails below)
TINY = {
    "singan": {
        "model": {"type": "singan", "max_size": 40, "min_size": 25, "nfc": 8, "min_nfc": 8, "num_layers": 3,
                  "steps_per_scale": 2, "d_steps": 1, "g_steps": 1},
        "data": {"type": "single_image", "image": os.path.join(ROOT, "ganzoo", "assets", "chelsea.png")}},
    "consingan": {
        "model": {"type": "consingan", "max_size": 40, "min_size": 25, "nfc": 8, "train_stages": 3,
                  "steps_per_stage": 2, "d_steps": 1, "g_steps": 1},
        "data": {"type": "single_image", "image": os.path.join(ROOT, "ganzoo", "assets", "chelsea.png")}},
    "spade": {
        "model": {"type": "spade", "label_nc": 3, "contain_dontcare_label": True, "crop_size": 32, "lambda_vgg": 0.0,
                  "generator": {"type": "spade_generator", "ngf": 4,
                                "norm": {"type": "spade", "param_free": "batch", "hidden": 8}},
                  "discriminator": {"type": "multiscale_patchgan", "ndf": 4}},
        "data": {"type": "paired_folders", "root": PAIRED, "image_dir": "images", "label_dir": "labels",
                 "load_size": 36}},
    "oasis": {
        "model": {"type": "oasis", "label_nc": 3, "contain_dontcare_label": True, "dontcare_class": 3,
                  "crop_size": 32, "generator": {"type": "oasis_generator", "ngf": 2, "z_dim": 4, "num_blocks": 3,
                                                 "norm": {"type": "spade", "param_free": "batch", "hidden": 8}},
                  "discriminator": {"type": "oasis_unet", "num_blocks": 3, "width_scale": 0.0625}},
        "data": {"type": "paired_folders", "root": PAIRED, "image_dir": "images", "label_dir": "labels",
                 "load_size": 36}},
    "semantic_pyramid": {  # WGAN-GP: its critic goes through a double backward
        "model": {"type": "semantic_pyramid", "image_size": 64, "channel_factor": 16, "num_classes": 0,
                  "gan_loss": "wgan", "gradient_penalty": 10.0,
                  "backbone": {"type": "resnet18_places365", "weights": "random"}},
        "data": {"type": "image_folder", "root": os.path.join(PAIRED, "images"), "image_size": 64}},
}
# the networks train.compile compiles: all but the critics differentiated twice by a gradient penalty
COMPILED = {"singan": ["SinGANGenerator", "SinGANGenerator"],  # one per scale
            "consingan": ["ConSinGANGenerator"] * 3,  # recompiled at each of its 3 stages (it grows)
            "spade": ["SPADEGenerator", "MultiscalePatchGAN"],
            "oasis": ["OASISGenerator", "OASISDiscriminator"],
            "semantic_pyramid": ["SemanticPyramidGenerator"]}

CASES = [(name, precision, channels_last, False) for name in TINY for precision in ("fp32", "bf16", "fp16")
         for channels_last in (False, True)]
CASES += [(name, "fp32", False, True) for name in TINY]


def test_every_registered_model_has_a_tiny_config():
    assert sorted(TINY) == sorted(MODELS.names()) == sorted(COMPILED)


def train_tiny(tmp_path, sections):
    config = tmp_path / "tiny.yaml"
    run = {"log_every": 1, "sample_every": 0, "ckpt_every": 0, "progress": False, "device": "cpu"}
    config.write_text(yaml.safe_dump({**sections, "run": run}))
    trainer = make_trainer(str(config), run_dir=str(tmp_path / "run"))
    assert trainer.fit()["status"] == "done"
    records = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert records and all(torch.isfinite(torch.tensor(list(r["losses"].values()))).all() for r in records)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    return trainer


def record_compile(monkeypatch, **options):
    """Class names of the networks handed to torch.compile from now on (compiled with ``options``)."""
    names = []
    compile_ = torch.compile

    def recording_compile(module, **kwargs):
        names.append(type(unwrap(module)).__name__)
        return compile_(module, **{**kwargs, **options})

    monkeypatch.setattr(torch, "compile", recording_compile)
    return names


@pytest.mark.parametrize("name, precision, channels_last, compile_", CASES, ids=[
    "-".join([name, precision] + ["channels_last"] * channels_last + ["compile"] * compile_)
    for name, precision, channels_last, compile_ in CASES])
def test_switch_matrix(tmp_path, monkeypatch, name, precision, channels_last, compile_):
    compiled = record_compile(monkeypatch, backend="aot_eager")
    train = {"steps": 2, "batch_size": 2, "precision": precision, "channels_last": channels_last,
             "compile": compile_, "grad_clip": 10.0, "ema": {"decay": 0.9}}
    trainer = train_tiny(tmp_path, {**TINY[name], "train": train})
    assert compiled == (COMPILED[name] if compile_ else [])
    if compile_:   # train.threads auto must not switch counts under compile (each switch recompiles)
        assert len(trainer.thread_tuner.candidates) == 1


def test_compile_with_inductor(tmp_path, monkeypatch):
    compiled = record_compile(monkeypatch)
    trainer = train_tiny(tmp_path, {"model": {"type": "tests.toy_gan:ToyGAN"},
                                    "data": {"type": "tests.toy_gan:ToyData", "n": 8},
                                    "train": {"steps": 3, "batch_size": 4, "compile": True}})
    assert compiled == ["ToyG", "Sequential"] and trainer.step == 3
