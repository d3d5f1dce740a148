import subprocess
import sys

import pytest
from torch import nn

from ganzoo.config import ConfigError
from ganzoo.registry import ALL, MODELS, NORMS, Registry, describe

pytestmark = pytest.mark.filterwarnings("ignore:.*backbone.weights=random")


def _widgets():
    reg = Registry("widget")

    @reg.register("small_widget")
    class Small(nn.Module):
        """A small widget."""

        def __init__(self, size, width=2):
            super().__init__()
            self.size, self.width = size, width

    def helper(width):
        return width

    @reg.register("broken_widget")
    class Broken(nn.Module):
        def __init__(self, width=2):
            super().__init__()
            helper(widht=width)  # a bug inside the constructor, with the message of a user's typo

    return reg


def test_register_build_and_user_errors_are_one_line_config_errors():
    reg = _widgets()
    assert reg.build({"type": "small_widget", "size": 1, "width": 5}).width == 5
    assert reg.build(None) is None
    cases = [
        ("small_widgte", r"^unknown widget type 'small_widgte'; did you mean 'small_widget'"),
        ({"width": 3}, r"^widget needs a 'type' key, got keys \['width'\]$"),
        ({"type": "small_widget", "size": 1, "widht": 3}, r"^widget \(small_widget\) has no option 'widht' "
                                                          r"\(did you mean 'width'\?\)$"),
        ({"type": "small_widget"}, r"^widget \(small_widget\) needs 'size'$"),
        ({"type": 3}, r"^widget type must be a string, got int: 3$"),
        ("torch.nn:NoSuchLayer", r"^cannot import widget type 'torch.nn:NoSuchLayer'"),
    ]
    for cfg, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            reg.build(cfg)
        assert "\n" not in str(info.value)
    with pytest.raises(KeyError, match="already registered"):  # two registrations: a bug, not a config error
        reg.register("small_widget")(dict)
    assert "small_widget" in reg and list(reg) == ["broken_widget", "small_widget"]
    assert "A small widget." in reg.describe()


def test_type_error_inside_a_constructor_is_a_bug_with_its_traceback():
    with pytest.raises(TypeError, match="unexpected keyword argument 'widht'") as info:
        _widgets().build({"type": "broken_widget", "width": 3})
    assert not isinstance(info.value, ConfigError)
    assert info.traceback[-1].name == "__init__"  # raised where the bug is, not re-raised by the registry


def test_owned_values_equal_is_fine_different_names_both_keys():
    reg = _widgets()
    built = reg.build({"type": "small_widget", "width": 4}, {"size": 7, "width": 4}, where="model.widget")
    assert (built.size, built.width) == (7, 4)
    assert reg.build("small_widget", {"size": 7}).size == 7  # filled in when the part does not say
    with pytest.raises(ConfigError, match=r"^model.widget.width=5 conflicts with model.width=4$"):
        reg.build({"type": "small_widget", "width": 5}, {"size": 7, "width": 4}, where="model.widget")
    with pytest.raises(ConfigError, match=r"^model.widget.size=1 conflicts with 7 from the image's size$"):
        reg.build({"type": "small_widget", "size": 1}, {"size": 7}, where="model.widget",
                  sources={"size": "the image's size"})
    spec = reg.fill("small_widget", {"width": 4}, where="model.widget")  # checked before anything is built
    assert spec == {"type": "small_widget", "width": 4}
    with pytest.raises(ConfigError, match="has no option 'height'"):
        reg.fill({"type": "small_widget", "height": 3}, where="model.widget")


TINY_SPADE = {"type": "spade", "label_nc": 3, "crop_size": 32, "lambda_vgg": 0.0,
              "generator": {"type": "spade_generator", "ngf": 2, "norm": {"type": "spade", "hidden": 8}},
              "discriminator": {"type": "multiscale_patchgan", "ndf": 4, "n_layers": 2}}
TINY_SP = {"type": "semantic_pyramid", "image_size": 64, "channel_factor": 16, "num_classes": 3,
           "backbone": {"type": "resnet18_places365", "weights": "random"}}


@pytest.mark.parametrize("cfg, part, message", [
    (dict(TINY_SPADE), {"crop_size": 64}, "model.generator.crop_size=64 conflicts with model.crop_size=32"),
    (dict(TINY_SPADE), {"label_nc": 3},
     "model.generator.label_nc=3 conflicts with 4 from model.label_nc + contain_dontcare_label + use_instance"),
    (dict(TINY_SP), {"image_size": 128}, "model.generator.image_size=128 conflicts with model.image_size=64"),
    ({"type": "singan"}, {"nfc": 64}, "model.generator.nfc=64 conflicts with model.nfc=32"),
], ids=["spade_crop_size", "spade_label_nc", "semantic_pyramid_image_size", "singan_nfc"])
def test_every_model_refuses_a_part_key_that_contradicts_the_model(cfg, part, message):
    generator = cfg.get("generator", {"type": MODELS.get(cfg["type"]).DEFAULTS["generator"]})
    generator = {"type": generator} if isinstance(generator, str) else generator
    with pytest.raises(ConfigError) as info:
        MODELS.build({**cfg, "generator": {**generator, **part}})
    assert str(info.value) == message


def test_part_keys_equal_to_the_model_are_fine():
    spade = MODELS.build({**TINY_SPADE, "generator": {**TINY_SPADE["generator"], "crop_size": 32, "label_nc": 4}})
    assert spade.G.label_nc == 4
    sp = MODELS.build({**TINY_SP, "generator": {"type": "semantic_pyramid", "image_size": 64}})
    assert set(sp.networks()) == {"G", "D"}  # the frozen classifier is not a network


def test_every_model_states_its_defaults():
    for name in MODELS.names():
        cls = MODELS.get(name)
        assert isinstance(cls.__dict__.get("DEFAULTS"), dict) and cls.DEFAULTS, name
        with pytest.raises(ConfigError, match="unknown key model.no_such_key"):
            cls(no_such_key=1)


def test_names_filter():
    assert MODELS.names(filter="s*") == ["semantic_pyramid", "singan", "spade"]
    assert NORMS.names(filter="*batch") == sorted(n for n in NORMS.names() if n.endswith("batch"))
    assert "batch" in NORMS.names(filter="*batch")


def test_module_path_types_for_user_code():
    reg = Registry("thing")
    assert isinstance(reg.build({"type": "torch.nn:Identity"}), nn.Identity)


def test_describe_lists_every_registry():
    text = describe()
    for registry in ALL:
        assert f"{registry.name}:" in text
    assert "spade" in NORMS.names()


def test_cli_list():
    out = subprocess.run([sys.executable, "-m", "ganzoo", "list"], capture_output=True, text=True, check=True)
    assert "norm:" in out.stdout and "hinge" in out.stdout
