"""eval_mode, and the layering it keeps: engine and metrics do not import the models package."""
import subprocess
import sys

from torch import nn

from ganzoo.modes import eval_mode


def test_eval_mode_restores_every_flag():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2), nn.Dropout()))
    net.train()
    net[1][0].eval()  # a frozen part that stays in eval mode
    with eval_mode(net) as inside:
        assert inside is net and not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == [True, True, True, False, True]


def test_engine_and_metrics_do_not_import_models():
    code = ("import sys, pkgutil, importlib, ganzoo.engine.trainer, ganzoo.metrics\n"
            "for info in pkgutil.iter_modules(ganzoo.metrics.__path__, 'ganzoo.metrics.'):\n"
            "    importlib.import_module(info.name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('ganzoo.models')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
