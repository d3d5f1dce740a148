"""FID: equality with pytorch-fid on a random-weight Inception, Fréchet math, .npz, cache, weights."""
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.backbones.inception import FID_WEIGHTS, FIDInception, build_fid_inception_v3
from ganzoo.backbones.weights import NOT_COMPARABLE, RandomWeightsWarning, WeightsNotFoundError
from ganzoo.metrics.fid import FIDFeatures, check_enough, fid_of_paths, load_stats, path_statistics, save_stats
from ganzoo.metrics.frechet import FeatureStats, frechet_distance

torch.set_num_threads(1)


def write_images(folder, count, rng, size=24, low=0, high=256):
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(low, high, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i:03d}.png"))
    return str(folder)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A torch home whose hub cache holds random FID weights, and two image folders."""
    root = tmp_path_factory.mktemp("fid")
    hub = root / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(0)
    state = build_fid_inception_v3().state_dict()
    for key, value in state.items():   # spread BN statistics so features are not trivially scaled copies
        if key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
    torch.save(state, hub / FID_WEIGHTS)
    rng = np.random.default_rng(0)
    a = write_images(root / "a", 66, rng)
    b = write_images(root / "b", 66, rng, low=60, high=200)
    return {"root": root, "torch_home": str(root / "torch"), "a": a, "b": b, "cache": str(root / "cache")}


def ours(env, a, b, **kw):
    """ganzoo's FID at dims 64; folder statistics are computed once and then come from the module cache."""
    return fid_of_paths(a, b, dims=64, batch_size=33, device="cpu", num_workers=0, cache_dir=env["cache"], **kw)


@pytest.fixture
def env(setup, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", setup["torch_home"])
    monkeypatch.delenv("GANZOO_WEIGHTS", raising=False)
    return setup


def test_fid_equals_pytorch_fid(env):
    from pytorch_fid import fid_score
    from pytorch_fid.inception import InceptionV3
    theirs = InceptionV3([0]).eval()    # loads the same file through pytorch-fid's own hub-cache code
    mu_a, sigma_a = fid_score.compute_statistics_of_path(env["a"], theirs, 33, 64, "cpu", 0)
    mu_b, sigma_b = fid_score.compute_statistics_of_path(env["b"], theirs, 33, 64, "cpu", 0)
    value = ours(env, env["a"], env["b"])
    features = FIDFeatures(64, None, "cpu")
    mu_o, sigma_o = path_statistics(env["a"], features, cache_dir=env["cache"])   # cached by ours()
    np.testing.assert_allclose(mu_o, mu_a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sigma_o, sigma_a, rtol=1e-4, atol=1e-7 * np.abs(sigma_a).max())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = fid_score.calculate_frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    except TypeError as err:   # scipy >= 1.18 removed sqrtm(disp=...), which pytorch-fid 0.3.0 passes
        pytest.skip(f"pytorch-fid cannot compute FID with this scipy: {err}")
    assert value > 1e-3
    assert abs(value - reference) / reference < 1e-4


def test_npz_round_trip_and_pytorch_fid_reads_it(env, tmp_path):
    features = FIDFeatures(64, None, "cpu")
    mu, sigma = path_statistics(env["a"], features, cache_dir=env["cache"])
    path = str(tmp_path / "a.npz")
    save_stats(path, mu, sigma)
    mu2, sigma2 = load_stats(path)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    from pytorch_fid.fid_score import compute_statistics_of_path
    mu3, sigma3 = compute_statistics_of_path(path, None, 1, 64, "cpu")
    np.testing.assert_array_equal(sigma, sigma3)
    assert ours(env, path, env["b"]) == pytest.approx(ours(env, env["a"], env["b"]), rel=1e-12)
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(ValueError, match="needs arrays 'mu' and 'sigma'"):
        load_stats(str(tmp_path / "bad.npz"))


def test_cache_is_keyed_by_what_produced_the_stats(env, tmp_path):
    import shutil
    ours(env, env["a"], env["b"])
    cache = tmp_path / "cache"
    shutil.copytree(env["cache"], cache)
    features = FIDFeatures(64, None, "cpu")
    first = path_statistics(env["a"], features, cache_dir=str(cache))
    names = sorted(os.listdir(cache))
    assert len(names) == 2 and all(n.startswith("fid_stats-") for n in names)
    for name in names:   # a hit must come from the cache file: shift every cached mean by one
        mu, sigma = load_stats(str(cache / name))
        save_stats(str(cache / name), mu + 1, sigma)
    again = path_statistics(env["a"], features, cache_dir=str(cache))
    np.testing.assert_array_equal(again[0], first[0] + 1)
    from ganzoo.metrics.fid import stats_key
    description = dict(features.describe(), folder="x", files=[])
    assert stats_key(description) != stats_key(dict(description, dims=192))
    assert stats_key(description) != stats_key(dict(description, weights="other"))


def test_too_few_images_is_a_clear_error(env):
    with pytest.raises(ValueError, match="66 images are fewer than the 192 feature dims"):
        fid_of_paths(env["a"], env["b"], dims=192, batch_size=25, device="cpu", num_workers=0, cache_dir=False)


def test_too_few_images_advice_names_only_smaller_dims():
    with pytest.raises(ValueError, match=r"use at least 192 images or smaller dims \(64\)$"):
        check_enough(66, 192, "x")
    with pytest.raises(ValueError, match=r"use at least 2048 images or smaller dims \(64, 192, 768\)$"):
        check_enough(66, 2048, "x")
    with pytest.raises(ValueError, match=r"fewer than the 64 feature dims, so .* use at least 64 images$"):
        check_enough(10, 64, "x")


def test_cache_key_follows_the_weights_file_contents(env, tmp_path):
    """Other weights saved under the same name, size and mtime must not read back the first ones' statistics."""
    weights = tmp_path / FID_WEIGHTS
    cache = str(tmp_path / "cache")

    def stats_with_weights(seed):
        torch.manual_seed(seed)
        torch.save(build_fid_inception_v3().state_dict(), weights)
        os.utime(weights, ns=(0, 10**18))
        return path_statistics(env["a"], FIDFeatures(64, str(weights), "cpu"), 33, 0, cache_dir=cache)

    first, first_stat = stats_with_weights(5), os.stat(weights)
    second, second_stat = stats_with_weights(6), os.stat(weights)
    assert (first_stat.st_size, first_stat.st_mtime_ns) == (second_stat.st_size, second_stat.st_mtime_ns)
    assert np.abs(first[0] - second[0]).max() > 1e-3
    assert len(os.listdir(cache)) == 2


def test_random_weights_warn_label_and_are_never_cached(env, tmp_path, capsys):
    with pytest.warns(RandomWeightsWarning, match="FID Inception has RANDOM weights: its values are NOT comparable"):
        features = FIDFeatures(64, "random", "cpu")
    cache = tmp_path / "cache"
    path_statistics(env["a"], features, 33, 0, cache_dir=str(cache))
    assert not cache.exists()
    from ganzoo.cli.fid import main
    with pytest.warns(RandomWeightsWarning):
        assert main([env["a"], env["b"], "--dims", "64", "--weights", "random", "--device", "cpu",
                     "--num-workers", "0", "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"({NOT_COMPARABLE})")
    assert not cache.exists()


def test_mixed_sizes_equal_one_by_one(env, tmp_path):
    rng = np.random.default_rng(1)
    folder = write_images(tmp_path / "mixed", 2, rng, size=20)
    write_images(tmp_path / "mixed2", 1, rng, size=31)
    os.replace(tmp_path / "mixed2" / "000.png", tmp_path / "mixed" / "zzz.png")
    features = FIDFeatures(64, None, "cpu")
    from ganzoo.metrics.images import image_loader, list_images
    files = list_images(folder)
    batch = next(iter(image_loader(files, 3, "cpu", 0)))
    assert isinstance(batch, list)
    together = features(batch)
    alone = torch.cat([features(image[None]) for image in batch])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_frechet_closed_form_diagonal():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 3, 6), rng.uniform(0, 3, 6)
    a[0] = 0.0   # singular covariance takes the eigen-decomposition path
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-12)


def test_frechet_against_scipy_sqrtm_and_batched():
    from scipy import linalg
    rng = np.random.default_rng(1)
    values = []
    stats = []
    for _ in range(3):
        x, y = rng.standard_normal((2, 40, 8)) @ rng.standard_normal((8, 8))
        mu1, mu2 = x.mean(0), y.mean(0) + 0.5
        s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        covmean = linalg.sqrtm(s1 @ s2).real
        values.append(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))
        stats.append((mu1, s1, mu2, s2))
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(values[-1], rel=1e-9)
    batched = frechet_distance(*[np.stack([s[i] for s in stats]) for i in range(4)])
    np.testing.assert_allclose(batched.numpy(), values, rtol=1e-9)


def test_feature_stats_match_numpy_with_a_large_offset():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 5)) * 0.01 + 1e4
    stats = FeatureStats()
    for chunk in np.array_split(x, 7):
        stats.update(torch.from_numpy(chunk))
    mu, sigma = stats.mean_cov()
    np.testing.assert_allclose(mu.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x, rowvar=False), rtol=1e-7, atol=1e-12)


def test_weight_resolution_order_and_error(setup, tmp_path, monkeypatch):
    def place(folder, seed):
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        state = build_fid_inception_v3().state_dict()
        torch.save(state, folder / FID_WEIGHTS)
        return state["Conv2d_1a_3x3.conv.weight"]

    explicit = place(tmp_path / "explicit", 1)
    env_dir = place(tmp_path / "env", 2)
    hub = place(tmp_path / "torch" / "hub" / "checkpoints", 3)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANZOO_WEIGHTS", str(tmp_path / "env"))

    def first_conv(**kw):
        return FIDInception(dims=64, **kw).blocks[0][0].conv.weight

    torch.testing.assert_close(first_conv(weights=str(tmp_path / "explicit" / FID_WEIGHTS)), explicit)
    torch.testing.assert_close(first_conv(weights=str(tmp_path / "explicit")), explicit)
    torch.testing.assert_close(first_conv(), env_dir)
    monkeypatch.delenv("GANZOO_WEIGHTS")
    torch.testing.assert_close(first_conv(), hub)
    os.remove(tmp_path / "torch" / "hub" / "checkpoints" / FID_WEIGHTS)
    with pytest.raises(WeightsNotFoundError) as err:
        FIDInception(dims=64)
    message = str(err.value)
    assert FID_WEIGHTS in message and "github.com/mseitzer/pytorch-fid" in message and "\n" not in message
    with pytest.raises(WeightsNotFoundError, match="nowhere.pth not found"):
        FIDInception(dims=64, weights=str(tmp_path / "nowhere.pth"))


def test_fid_cli(env, tmp_path, capsys):
    from ganzoo.cli.fid import main
    out = str(tmp_path / "a.npz")
    common = ["--dims", "64", "--device", "cpu", "--num-workers", "0", "--cache-dir", env["cache"]]
    assert main(["--save-stats", env["a"], out] + common) == 0
    assert main([out, env["b"]] + common) == 0
    value = float(capsys.readouterr().out.strip().splitlines()[-1].split()[-1])
    assert value == pytest.approx(ours(env, env["a"], env["b"]), rel=1e-9)
    assert main([env["a"], str(tmp_path / "missing"), "--dims", "64"]) == 2
    assert "missing not found" in capsys.readouterr().err
