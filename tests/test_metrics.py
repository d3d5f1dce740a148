"""Registered in-training metrics, LPIPS (random trunk), SinGAN diversity, patch SWD, ganzoo-eval."""
import json

import pytest
import torch

from ganzoo.backbones.weights import NOT_COMPARABLE, RandomWeightsWarning
from ganzoo.metrics.diversity import LPIPS, LPIPS_TRUNKS, singan_diversity
from ganzoo.metrics.evaluate import run_metrics
from ganzoo.metrics.swd import laplacian_pyramid, patch_swd, sliced_wasserstein
from ganzoo.registry import METRICS

torch.set_num_threads(1)


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "path": f"{i}.png"}


class EchoModel(torch.nn.Module):
    """Samples = the batch's images plus ``noise`` × seeded Gaussian noise."""

    def __init__(self, noise=0.0):
        super().__init__()
        self.noise = noise
        self.calls = []

    def sample(self, batch=None, n=None, seed=None):
        self.calls.append((n, seed, self.training))
        image = batch["image"]
        g = torch.Generator().manual_seed(seed)
        return (image + self.noise * torch.randn(image.shape, generator=g)).clamp(-1, 1)


def images(count, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, size, size, generator=g) * 2 - 1 for _ in range(count)]


def test_registered_metrics_build_from_config_entries():
    for name in ("fid", "sifid", "lpips_diversity", "diversity", "swd"):
        assert name in METRICS
    metric = METRICS.build({"type": "fid", "num_samples": 2000, "dims": 2048, "weights": None, "batch_size": 50})
    assert (metric.num_samples, metric.dims, metric.batch_size) == (2000, 2048, 50)


def test_fid_metric_is_zero_for_a_model_that_returns_the_data(monkeypatch, tmp_path):
    from ganzoo.backbones.inception import FID_WEIGHTS, build_fid_inception_v3
    torch.manual_seed(0)
    torch.save(build_fid_inception_v3().state_dict(), tmp_path / FID_WEIGHTS)
    monkeypatch.setenv("GANZOO_WEIGHTS", str(tmp_path))
    dataset = ListDataset(images(64, size=8))
    metric = METRICS.build({"type": "fid", "num_samples": 64, "dims": 64, "batch_size": 32})
    model = EchoModel().train()
    assert metric(model, dataset, "cpu")["fid"] == pytest.approx(0, abs=1e-9)
    assert model.training and all(not training for _, _, training in model.calls)
    assert [seed for _, seed, _ in model.calls] == [0, 1]
    assert "fid_warning" not in metric(model, dataset, "cpu")
    random = METRICS.build({"type": "fid", "num_samples": 64, "dims": 64, "batch_size": 32, "weights": "random"})
    with pytest.warns(RandomWeightsWarning, match="FID Inception has RANDOM weights"):
        assert random(model, dataset, "cpu")["fid_warning"] == NOT_COMPARABLE


def test_sifid_metric(monkeypatch, tmp_path):
    from ganzoo.backbones.inception import TORCHVISION_INCEPTION_WEIGHTS, build_torchvision_inception_v3
    torch.manual_seed(0)
    torch.save(build_torchvision_inception_v3().state_dict(), tmp_path / TORCHVISION_INCEPTION_WEIGHTS)
    monkeypatch.setenv("GANZOO_WEIGHTS", str(tmp_path))
    dataset = ListDataset(images(1, size=40))
    metric = METRICS.build({"type": "sifid", "num_samples": 3, "batch_size": 2})
    assert metric(EchoModel(), dataset, "cpu")["sifid"] == pytest.approx(0, abs=1e-9)
    assert metric(EchoModel(noise=0.3), dataset, "cpu")["sifid"] > 1e-6
    assert "sifid_warning" not in metric(EchoModel(), dataset, "cpu")
    random = METRICS.build({"type": "sifid", "num_samples": 1, "weights": "random"})
    with pytest.warns(RandomWeightsWarning, match="SIFID Inception has RANDOM weights"):
        assert random(EchoModel(), dataset, "cpu")["sifid_warning"] == NOT_COMPARABLE


def test_lpips_random_trunk_and_trunk_loading(tmp_path, monkeypatch):
    torch.manual_seed(0)
    with pytest.warns(RandomWeightsWarning, match="LPIPS trunk has RANDOM weights"):
        net = LPIPS("alex", pnet_rand=True)
    x, y = torch.rand(2, 2, 3, 32, 32) * 2 - 1
    d = net(x, y)
    assert d.shape == (2,) and (d > 0).all()
    torch.testing.assert_close(net(x, x), torch.zeros(2))
    torch.testing.assert_close(net(y, x), d, rtol=1e-5, atol=1e-6)

    import torchvision
    state = torchvision.models.alexnet(weights=None).state_dict()
    monkeypatch.setenv("GANZOO_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=LPIPS_TRUNKS["alex"][1]):
        LPIPS("alex")
    torch.save(state, tmp_path / LPIPS_TRUNKS["alex"][1])
    loaded = LPIPS("alex")
    torch.testing.assert_close(getattr(loaded.model.net.slice3, "6").weight, state["features.6.weight"])
    torch.testing.assert_close(getattr(loaded.model.net.slice5, "10").bias, state["features.10.bias"])


def test_lpips_diversity_metric():
    metric = METRICS.build({"type": "lpips_diversity", "num_inputs": 3, "pnet_rand": True, "batch_size": 2})
    dataset = ListDataset(images(3, size=32))
    with pytest.warns(RandomWeightsWarning):
        result = metric(EchoModel(), dataset, "cpu")
    assert result["lpips_diversity"] == pytest.approx(0, abs=1e-7)
    assert result["lpips_diversity_warning"] == NOT_COMPARABLE
    assert metric(EchoModel(noise=0.5), dataset, "cpu")["lpips_diversity"] > 0


def test_singan_diversity_by_hand():
    samples = torch.tensor([[[[0.0, 1.0]]], [[[2.0, 1.0]]]])     # K=2, C=1, H=1, W=2
    real = torch.tensor([[[1.0, 3.0]]])                          # std 1
    # per-pixel population std: [1, 0] -> mean 0.5; divided by 1
    assert singan_diversity(samples, real) == pytest.approx(0.5)
    metric = METRICS.build({"type": "diversity", "num_samples": 40, "batch_size": 20})
    dataset = ListDataset([torch.zeros(3, 8, 8) + torch.linspace(-0.5, 0.5, 8)])
    value = metric(EchoModel(noise=0.1), dataset, "cpu")["diversity"]
    expected = 0.1 / dataset[0]["image"].double().std(correction=0).item()
    assert value == pytest.approx(expected, rel=0.1)


def test_sliced_wasserstein_and_patch_swd():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 1, generator=g)
    assert float(sliced_wasserstein(a, a + 0.25, 4, g)) == pytest.approx(0.25, rel=1e-5)   # 1-D: a shift
    assert float(sliced_wasserstein(a.repeat(1, 3), a.repeat(1, 3), 16, g)) == pytest.approx(0, abs=1e-7)
    levels = laplacian_pyramid(torch.rand(2, 3, 64, 64), min_resolution=16)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    real = torch.stack(images(32, size=32))
    same = patch_swd(real, real.clone(), patches_per_image=128, num_projections=128, seed=1)
    blocky = torch.nn.functional.interpolate(real[..., ::4, ::4], scale_factor=4, mode="nearest")
    smooth = patch_swd(real, blocky, patches_per_image=128, num_projections=128, seed=1)
    assert set(same) == {32, 16, "mean"}
    assert smooth[32] > 2 * same[32]   # same set, other patches: sampling noise only
    result = METRICS.build({"type": "swd", "num_samples": 8, "batch_size": 4, "min_resolution": 16})(
        EchoModel(noise=0.5), ListDataset(images(8, size=32)), "cpu")
    assert set(result) == {"swd", "swd_32", "swd_16"} and result["swd"] > 0


def test_swd_metric_resizes_reals_to_the_sample_size():
    class HalfSizeModel(EchoModel):  # like SinGAN: samples at a smaller size than the dataset image
        def sample(self, batch=None, n=None, seed=None):
            return torch.nn.functional.interpolate(batch["image"], scale_factor=0.5, mode="bicubic",
                                                   antialias=True, align_corners=False).clamp(-1, 1)

    metric = METRICS.build({"type": "swd", "num_samples": 4, "batch_size": 4, "min_resolution": 16, "seed": 3})
    result = metric(HalfSizeModel(), ListDataset(images(4, size=64)), "cpu")
    assert set(result) == {"swd", "swd_32", "swd_16"}
    assert result["swd"] < metric(EchoModel(noise=0.5), ListDataset(images(4, size=32)), "cpu")["swd"]


def test_run_metrics_floats_text_and_later_wins():
    dataset, model = ListDataset(images(2)), EchoModel()
    calls = []

    def first(model_, dataset_, device):
        calls.append((model_, dataset_, device))
        return {"a": torch.tensor(1.5), "b": 2, "note": "text"}

    def second(model_, dataset_, device):
        return {"b": torch.tensor([3.0]), "per_level": {"x": 1.0}}

    results = run_metrics([first, second], model, dataset, "cpu")
    assert results == {"a": 1.5, "b": 3.0, "note": "text", "per_level": {"x": 1.0}}
    assert all(type(results[k]) is float for k in ("a", "b")) and calls == [(model, dataset, "cpu")]


def test_eval_cli_loads_the_config_with_the_trainer_defaults(tmp_path, monkeypatch, capsys):
    import ganzoo.engine.checkpoint as checkpoint
    from ganzoo.cli import eval as eval_cli
    from ganzoo.registry import DATASETS
    built = {}

    def fake_load_model(path, device="auto"):
        model = EchoModel(noise=0.2)
        model.config = {"data": {"type": "fake"}}
        return model

    def fake_build(cfg):
        built.update(cfg)
        return ListDataset(images(8, size=32))

    monkeypatch.setattr(checkpoint, "load_model", fake_load_model)
    monkeypatch.setattr(DATASETS, "build", fake_build)
    (tmp_path / "ckpt.pt").write_bytes(b"")
    config = tmp_path / "cfg.yaml"
    config.write_text(f"model: {{type: '{__name__}:EchoModel'}}\ndata: {{type: '{__name__}:ListDataset', root: a}}\n")
    out = tmp_path / "metrics.json"
    # trainer keys (eval.metrics, train.grad_clip) need no "+": the config went through load_config
    assert eval_cli.main([str(config), "data.root=b", "train.grad_clip=1.0", "--checkpoint", str(tmp_path / "ckpt.pt"),
                          "eval.metrics=[{type: swd, num_samples: 8, batch_size: 4}]", "--device", "cpu",
                          "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert built["root"] == "b" and results["swd"] > 0 and json.loads(capsys.readouterr().out) == results
    assert eval_cli.main([str(config), "--checkpoint", str(tmp_path / "ckpt.pt")]) == 2
    assert "eval.metrics is empty" in capsys.readouterr().err
    monkeypatch.undo()
    assert eval_cli.main([str(config), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt not found" in capsys.readouterr().err
