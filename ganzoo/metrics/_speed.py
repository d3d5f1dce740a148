"""Side-by-side speed of ganzoo's FID and pytorch-fid on the same random-weight Inception and images.

    python -m ganzoo.metrics._speed [--images 64] [--size 256] [--batch 32] [--reps 2] [--device cpu]

Writes random PNGs and a random-weight ``pt_inception-2015-12-05-6726825d.pth`` into a temporary
TORCH_HOME (pytorch-fid then loads it through its own hub-cache code path, no network), alternates
the two extractors ``--reps`` times, then times the Fréchet step at 2048 dims against scipy ``sqrtm``.
Prints one JSON line.
"""
import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frechet-dims", type=int, default=2048)
    args = parser.parse_args(argv)

    from PIL import Image

    from ..backbones.inception import FID_WEIGHTS, build_fid_inception_v3
    from .fid import FIDFeatures, path_statistics
    from .frechet import frechet_distance
    from .images import default_workers

    workers = default_workers(args.device) if args.workers is None else args.workers
    result = {"machine": platform.processor() or platform.machine(), "device": args.device,
              "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
              "size": args.size, "images": args.images, "workers": workers, "dtype": "float32"}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        folder = os.path.join(tmp, "images")
        os.makedirs(folder)
        for i in range(args.images):
            pixels = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{i:05d}.png"))
        os.environ["TORCH_HOME"] = tmp
        os.makedirs(os.path.join(tmp, "hub", "checkpoints"))
        torch.manual_seed(0)
        torch.save(build_fid_inception_v3().state_dict(), os.path.join(tmp, "hub", "checkpoints", FID_WEIGHTS))

        from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path
        from pytorch_fid.inception import InceptionV3
        theirs = InceptionV3([3]).to(args.device).eval()
        ours = FIDFeatures(2048, None, args.device)
        times = {"pytorch_fid": [], "ganzoo": []}
        for _ in range(args.reps):
            start = time.perf_counter()
            mu_t, sigma_t = compute_statistics_of_path(folder, theirs, args.batch, 2048, args.device, workers)
            times["pytorch_fid"].append(time.perf_counter() - start)
            start = time.perf_counter()
            mu_o, sigma_o = path_statistics(folder, ours, args.batch, workers, cache_dir=False, check=False)
            times["ganzoo"].append(time.perf_counter() - start)
        for name, values in times.items():
            result[f"extract_img_s_{name}"] = [round(args.images / t, 2) for t in values]
        result["max_rel_diff_mu"] = float(np.abs(mu_o - mu_t).max() / np.abs(mu_t).max())

    dims = args.frechet_dims
    a, b = rng.standard_normal((2, dims, 2 * dims)) / np.sqrt(2 * dims)
    sigma1, sigma2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.standard_normal((2, dims))
    frechet = {"scipy_sqrtm": [], "ganzoo": []}
    for _ in range(args.reps):
        start = time.perf_counter()
        reference = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
        frechet["scipy_sqrtm"].append(round(time.perf_counter() - start, 3))
        start = time.perf_counter()
        value = frechet_distance(mu1, sigma1, mu2, sigma2, device=args.device)
        frechet["ganzoo"].append(round(time.perf_counter() - start, 3))
    for name, values in frechet.items():
        result[f"frechet_s_{name}"] = values
    result["frechet_rel_diff"] = abs(value - reference) / abs(reference)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
