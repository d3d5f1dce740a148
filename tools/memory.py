"""Peak memory of one training step with and without the memory levers (train.accumulate,
train.checkpoint_activations), side by side in the same run, and the largest setting that fits a budget.

    python tools/memory.py table --gib 4                # each lever at two sizes + what fits in 4 GiB (linear fit)
    python tools/memory.py spade --batch 8 --size 256 --accumulate 4 --checkpoint
    python tools/memory.py singan --size 400 --checkpoint
    python tools/memory.py budget --gib 4               # the same by search (a fresh process per probe: slow)

Each measurement runs in a fresh process: the model (random weights, ADE20K's 151 labels, no VGG loss), one
warm-up step, then the peak of one more step over the memory held before it (CPU: the process's peak resident
set, reset through /proc/self/clear_refs; CUDA: torch.cuda.max_memory_allocated). Checkout-only, like compare.py.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def spade_step(batch, size, accumulate, device):
    import torch
    from ganzoo.registry import MODELS
    model = MODELS.build({"type": "spade", "label_nc": 150, "crop_size": size, "lambda_vgg": 0.0}).to(device)
    data = {"image": torch.rand(batch, 3, size, size, device=device) * 2 - 1,
            "label": torch.randint(0, 151, (batch, 1, size, size), device=device)}
    return model, lambda ctx: model.train_step(data, ctx)


def singan_step(size, device):
    import torch
    from ganzoo.registry import MODELS
    model = MODELS.build({"type": "singan", "max_size": size}).to(device)
    image = torch.rand(1, 3, size * 2 // 3, size) * 2 - 1  # a 3:2 photo
    model.prepare([{"image": image[0]}])
    model.to(device)
    for index in range(model.num_scales):  # straight to the finest scale (coarser ones stay random)
        model.begin_stage(index)
    model.to(device)
    return model, lambda ctx: model.train_step({"image": image.to(device)}, ctx)


def measure(args):
    """One setting in this process -> {"peak_mib": ..., "seconds": ...}."""
    import time

    import torch
    from ganzoo.engine.context import StepContext
    from ganzoo.engine.optim import build_optimizers
    from ganzoo.layers.checkpointing import checkpoint_activations
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.what == "spade":
        model, step = spade_step(args.batch, args.size, args.accumulate, device)
    else:
        model, step = singan_step(args.size, device)
    model.train()
    if args.checkpoint:
        for module in model.activation_checkpoint_modules():
            checkpoint_activations(module)
    ctx = StepContext(build_optimizers(model.param_groups(), device=device), device, accumulate=args.accumulate)
    step(ctx)  # warm-up: optimizer states, allocator pools
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        held = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        held = _rss_kib("VmRSS:") * 1024
    start = time.perf_counter()
    step(ctx)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _rss_kib("VmHWM:") * 1024
    return {"peak_mib": round((peak - held) / 2 ** 20, 1), "seconds": round(time.perf_counter() - start, 2)}


def run_child(model, size, batch=1, accumulate=1, checkpoint=False, device="cpu", threads=2):
    cmd = [sys.executable, os.path.abspath(__file__), model, "--size", str(size), "--batch", str(batch),
           "--accumulate", str(accumulate), "--device", device, "--threads", str(threads)]
    cmd += ["--checkpoint"] if checkpoint else []
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        if "out of memory" in done.stderr.lower() or done.returncode < 0:
            return None
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


LEVERS = [("plain", 1, False), ("checkpoint_activations", 1, True)]


def fit_budget(points, budget_mib):
    """Peak memory is linear in the batch (SPADE) or the pixel count (SinGAN): from two (x, MiB) points, the
    largest x within ``budget_mib``."""
    (x0, m0), (x1, m1) = points
    slope = (m1 - m0) / (x1 - x0)
    return None if slope <= 0 else x0 + (budget_mib - m0) / slope


def table(args):
    """Each lever at two sizes side by side, then the largest SPADE batch / SinGAN image in ``--gib`` from the
    two points (linear in batch / pixels)."""
    small, big = args.batch // 2, args.batch
    rows, fits = [], {}
    for name, _, checkpoint in LEVERS:
        points = []
        for batch in (small, big):
            result = run_child("spade", args.spade_size, batch, 1, checkpoint, args.device, args.threads)
            rows.append((f"SPADE batch {batch}, {args.spade_size}²", name, result))
            points.append((batch, result["peak_mib"]))
        fits[("spade", name)] = fit_budget(points, args.gib * 1024)
    result = run_child("spade", args.spade_size, big, big, False, args.device, args.threads)
    rows.append((f"SPADE batch {big}, {args.spade_size}²", f"accumulate {big} (parts of 1)", result))
    sizes = (args.singan_size, round(args.singan_size * 1.4))
    for name, _, checkpoint in LEVERS:
        points = []
        for size in sizes:
            result = run_child("singan", size, 1, 1, checkpoint, args.device, args.threads)
            rows.append((f"SinGAN finest scale, {size}x{size * 2 // 3}", name, result))
            points.append((size * (size * 2 // 3), result["peak_mib"]))
        pixels = fit_budget(points, args.gib * 1024)
        fits[("singan", name)] = None if pixels is None else (1.5 * pixels) ** 0.5  # 3:2: width from pixels
    print("| setting | lever | peak memory of a step (MiB) | step time (s) |\n|---|---|---|---|")
    for setting, name, result in rows:
        print(f"| {setting} | {name} | {result['peak_mib']} | {result['seconds']} |")
    print(f"\n| lever | SPADE batch at {args.spade_size}² in {args.gib:g} GiB | SinGAN image (3:2, width) in "
          f"{args.gib:g} GiB |\n|---|---|---|")
    for name, _, _ in LEVERS:
        batch, width = fits[("spade", name)], fits[("singan", name)]
        print(f"| {name} | {int(batch) if batch else '-'} | {int(width) if width else '-'} px |")


def largest(fits, start, limit):
    """The largest n in [start, limit] with fits(n), doubling then bisecting (fits is monotone)."""
    if not fits(start):
        return None
    low, high = start, start
    while high < limit and fits(min(high * 2, limit)):
        low = high = min(high * 2, limit)
    high = min(high * 2, limit + 1)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def budget(args):
    """Accumulation is not searched: with it any batch fits, in parts of the largest batch that fits alone."""
    limit_mib = args.gib * 1024

    def fits(model, size, batch, checkpoint):
        result = run_child(model, size, batch, 1, checkpoint, args.device, args.threads)
        return result is not None and result["peak_mib"] <= limit_mib

    print(f"| lever | largest SPADE batch at {args.spade_size}² | largest SinGAN image (px, 3:2) |\n|---|---|---|")
    for name, _, checkpoint in LEVERS:
        batch = largest(lambda b: fits("spade", args.spade_size, b, checkpoint), 1, 64)
        steps = largest(lambda s: fits("singan", s * 50, 1, checkpoint), 2, 40)
        print(f"| {name} | {batch or '-'} | {steps * 50 if steps else '-'} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["spade", "singan", "table", "budget"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--accumulate", type=int, default=4)
    parser.add_argument("--checkpoint", action="store_true")
    parser.add_argument("--spade-size", type=int, default=256)
    parser.add_argument("--singan-size", type=int, default=250)
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.what == "table":
        return table(args)
    if args.what == "budget":
        return budget(args)
    if args.what == "singan":
        args.accumulate = 1
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    sys.exit(main())
