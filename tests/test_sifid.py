"""SIFID against a float64 numpy implementation, pairing rules, CLI."""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from ganzoo.backbones.inception import TORCHVISION_INCEPTION_WEIGHTS, SIFIDInception, build_torchvision_inception_v3
from ganzoo.backbones.weights import WeightsNotFoundError
from ganzoo.metrics.sifid import pair_files, sifid_of_folders

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sifid")
    torch.manual_seed(0)
    torch.save(build_torchvision_inception_v3().state_dict(), root / TORCHVISION_INCEPTION_WEIGHTS)
    rng = np.random.default_rng(0)
    sizes = {"1.png": (30, 40), "2.png": (30, 40), "10.png": (36, 28)}   # two sizes: batched per size
    for folder, scale in (("real", 1.0), ("fake", 0.6)):
        os.makedirs(root / folder)
        for name, (h, w) in sizes.items():
            pixels = (rng.integers(0, 256, (h, w, 3)) * scale).astype(np.uint8)
            Image.fromarray(pixels).save(root / folder / name)
    return root


def numpy_sifid(net, real_path, fake_path):
    """The official definition, written plainly: pixels are samples, float64 statistics, scipy sqrtm."""
    def stats(path):
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
        x = torch.from_numpy(image.transpose(2, 0, 1)[None]).float()
        with torch.no_grad():
            features = net(x)[0].double().numpy()             # C, H, W
        samples = features.reshape(features.shape[0], -1).T    # pixels, C
        return samples.mean(0), np.cov(samples, rowvar=False)

    mu1, s1 = stats(real_path)
    mu2, s2 = stats(fake_path)
    covmean = linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("dims", [64, 192])
def test_sifid_matches_numpy(setup, dims):
    weights = str(setup / TORCHVISION_INCEPTION_WEIGHTS)
    scores = sifid_of_folders(setup / "real", setup / "fake", "png", dims=dims, weights=weights, device="cpu",
                              batch_size=4)
    assert list(scores) == ["1.png", "2.png", "10.png"]        # natural name order
    net = SIFIDInception(dims=dims, weights=weights)
    for name, score in scores.items():
        expected = numpy_sifid(net, setup / "real" / name, setup / "fake" / name)
        assert score == pytest.approx(expected, rel=1e-6)
        assert score > 0


def test_pairing_errors_list_the_unpaired_files(setup, tmp_path):
    import shutil
    shutil.copytree(setup / "fake", tmp_path / "fake")
    os.rename(tmp_path / "fake" / "2.png", tmp_path / "fake" / "3.png")
    with pytest.raises(ValueError, match=r"no fake image for 2\.png .*no real image for 3\.png"):
        pair_files(setup / "real", tmp_path / "fake", "png")
    with pytest.raises(ValueError, match=r"no \*\.jpg images"):
        pair_files(setup / "real", setup / "fake", "jpg")
    with pytest.raises(FileNotFoundError, match="nope not found"):
        pair_files(setup / "real", tmp_path / "nope", "png")


def test_png_and_jpg_pair_by_stem(setup, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    for name in ("1", "2", "10"):   # the official default suffix is jpg; ganzoo writes png
        Image.open(setup / "fake" / f"{name}.png").save(fake / f"{name}.jpg", quality=95)
    pairs = pair_files(setup / "real", fake)
    assert [(name, real.name, fake.name) for name, real, fake in pairs] == [
        ("1.png", "1.png", "1.jpg"), ("2.png", "2.png", "2.jpg"), ("10.png", "10.png", "10.jpg")]
    with pytest.raises(ValueError, match=r"no \*\.png images in .*fake"):
        pair_files(fake, fake, "png")
    Image.open(setup / "fake" / "1.png").save(fake / "1.png")
    with pytest.raises(ValueError, match="1.jpg and 1.png in .* have the same stem"):
        pair_files(setup / "real", fake)


def test_sifid_cli(setup, tmp_path, capsys):
    from ganzoo.cli.sifid import main
    out = tmp_path / "SIFID.npy"
    weights = str(setup / TORCHVISION_INCEPTION_WEIGHTS)
    assert main(["--path2real", str(setup / "real"), "--path2fake", str(setup / "fake"), "--images_suffix", "png",
                 "--weights", weights, "--gpu", "", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    per_pair = [float(line.split("\t")[1]) for line in lines[:-1]]
    assert lines[-1].startswith("SIFID:")
    assert float(lines[-1].split()[-1]) == pytest.approx(np.mean(per_pair), rel=1e-5)
    np.testing.assert_allclose(np.load(out), per_pair, rtol=1e-5)
    assert main(["--path2real", str(setup / "real"), "--path2fake", str(tmp_path), "--images_suffix", "png",
                 "--weights", weights]) == 2
    assert "no fake image for 1.png, 2.png, 10.png" in capsys.readouterr().err


def test_sifid_cli_writes_scores_only_where_out_says(setup, tmp_path, monkeypatch, capsys):
    from ganzoo.cli.sifid import main
    from ganzoo.backbones.weights import NOT_COMPARABLE, RandomWeightsWarning
    monkeypatch.chdir(tmp_path)
    with pytest.warns(RandomWeightsWarning, match="SIFID Inception has RANDOM weights"):
        assert main(["--path2real", str(setup / "real"), "--path2fake", str(setup / "fake"), "--weights", "random",
                     "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("SIFID:  ") and lines[-1].endswith(f"({NOT_COMPARABLE})")
    assert os.listdir(tmp_path) == []


def test_missing_torchvision_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GANZOO_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError) as err:
        SIFIDInception()
    assert TORCHVISION_INCEPTION_WEIGHTS in str(err.value) and "download.pytorch.org" in str(err.value)
