import subprocess
import sys

import pytest
from torch import nn

from ganzoo.registry import ALL, NORMS, Registry, describe


def test_register_build_and_errors():
    reg = Registry("widget")

    @reg.register("small_widget")
    class Small(nn.Module):
        """A small widget."""

        def __init__(self, width=2):
            super().__init__()
            self.width = width

    assert reg.build({"type": "small_widget", "width": 5}).width == 5
    assert reg.build("small_widget").width == 2
    assert reg.build(None) is None
    with pytest.raises(KeyError, match=r"unknown widget type 'small_widgte'; did you mean 'small_widget'"):
        reg.build("small_widgte")
    with pytest.raises(KeyError, match="'type' key"):
        reg.build({"width": 3})
    with pytest.raises(TypeError, match="widget Small.*height"):
        reg.build({"type": "small_widget", "height": 3})
    with pytest.raises(KeyError, match="already registered"):
        reg.register("small_widget")(dict)
    assert "small_widget" in reg and list(reg) == ["small_widget"]
    assert "A small widget." in reg.describe()


def test_module_path_types_for_user_code():
    reg = Registry("thing")
    assert isinstance(reg.build({"type": "torch.nn:Identity"}), nn.Identity)
    with pytest.raises(KeyError, match="cannot import"):
        reg.build("torch.nn:NoSuchLayer")


def test_describe_lists_every_registry():
    text = describe()
    for registry in ALL:
        assert f"{registry.name}:" in text
    assert "spade" in NORMS.names()


def test_cli_list():
    out = subprocess.run([sys.executable, "-m", "ganzoo", "list"], capture_output=True, text=True, check=True)
    assert "norm:" in out.stdout and "hinge" in out.stdout
