"""SinGAN's evaluation over a set of images, one trained model each (paper, Table 2: SIFID and diversity of
samples generated from the coarsest scale N and from scale N-1, averaged over the images)."""
import math
import os

import torch

from ganzoo.backbones.weights import NOT_COMPARABLE
from ganzoo.metrics.diversity import singan_diversity
from ganzoo.metrics.images import quantize
from ganzoo.metrics.sifid import SIFIDFeatures, sifid_of_tensors
from ganzoo.modes import eval_mode

#: start scales of the paper's two rows: from the coarsest scale (N) and from the one above it (N-1)
START_SCALES = {"N": 0, "N-1": 1}


def training_image(model):
    """The real image at the resolution the model samples at (the finest pyramid level)."""
    if not hasattr(model, "reals"):
        raise ValueError(f"{type(model).__name__} has no image pyramid (reals): the single-image protocol "
                         "needs a SinGAN-like model")
    return model.reals[-1]


def evaluate_model(model, features, num_samples=50, batch_size=10, seed=0):
    """``{"sifid_N", "sifid_N-1", "diversity_N", "diversity_N-1"}`` of one model: ``num_samples`` samples per
    start scale, each scored against the training image (SIFID), and their diversity."""
    real = training_image(model)
    results = {}
    with eval_mode(model), torch.no_grad():
        for row, start in START_SCALES.items():
            samples = []
            for i in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - i)
                samples.append(model.sample(n=n, seed=seed + i, start_scale=start).float())
            samples = torch.cat(samples)
            reals = quantize(real.expand(len(samples), -1, -1, -1))
            results[f"sifid_{row}"] = float(sifid_of_tensors(reals, quantize(samples), features).mean())
            results[f"diversity_{row}"] = singan_diversity(samples, real[0])
    return results


def evaluate_runs(run_dirs, num_samples=50, dims=64, weights=None, device="cpu", seed=0):
    """``(rows, mean)``: one row per run directory (``{"image": name, **scores}``) and the mean of each score."""
    import ganzoo
    features = SIFIDFeatures(dims, weights, device)
    rows = []
    for run_dir in run_dirs:
        model = ganzoo.load(run_dir, device=device)
        rows.append({"image": os.path.basename(os.path.normpath(run_dir)),
                     **evaluate_model(model, features, num_samples, seed=seed)})
    keys = [k for k in rows[0] if k != "image"] if rows else []
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    if features.random_weights:
        mean["sifid_warning"] = NOT_COMPARABLE
    return rows, mean


def markdown_table(rows, mean):
    """The paper's layout: a row per start scale (N, N-1), SIFID and diversity averaged over the images,
    then the per-image numbers."""
    lines = [f"| generation from | SIFID (mean of {len(rows)}) | diversity |", "|---|---|---|"]
    for row in START_SCALES:
        lines.append(f"| scale {row} | {mean[f'sifid_{row}']:.4f} | {mean[f'diversity_{row}']:.4f} |")
    if "sifid_warning" in mean:
        lines.append(f"\n{mean['sifid_warning']}")
    keys = [k for k in rows[0] if k != "image"] if rows else []
    lines += ["", "| image | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += ["| " + r["image"] + " | " + " | ".join(f"{r[k]:.4f}" if math.isfinite(r[k]) else "nan" for k in keys)
              + " |" for r in rows]
    return "\n".join(lines) + "\n"
