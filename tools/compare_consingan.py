"""Side by side on one machine, in one invocation: ganzoo ConSinGAN, the official ConSinGAN and ganzoo SinGAN
trained on the same photo at the same CPU setting; wall-clock and sample quality (a checkout tool: it runs the
official code in ``../shared/refs/consingan``, or ``--refs PATH``).

    python tools/compare_consingan.py [--image PNG] [--max-size 60] [--niter 100] [--samples 10] [--json OUT]

Each contender trains in its own process with ``--threads`` torch threads (default 1), no sampling or logging
during training, the paper configs (configs/consingan.yaml, configs/singan.yaml) with
``max_size``, the iterations and the LR drop (80 %) overridden. Then ``--samples`` random samples at the finest size are scored against the finest real image:
patch SWD (x1000, mean over the Laplacian levels), SIFID (SinGAN's Inception layers; with ``--sifid-weights
random`` the same seeded random net for all three: a relative number only) and SinGAN's diversity measure.
The official code's imaging imports (scikit-image, albumentations, matplotlib, tensorboard) are stubbed: its
training loop, networks, resizing and noise are its own.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CONTENDERS = ("ganzoo_consingan", "official_consingan", "ganzoo_singan")


def clocks():
    return time.perf_counter(), time.process_time()


def since(start):
    """(wall-clock s, CPU s of this process) since ``start``: CPU time is what a shared machine distorts least."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def warm_up():
    """Lazy imports every contender pays once (torch.optim pulls in torch._dynamo), outside the timing."""
    import torch
    param = torch.zeros(1, requires_grad=True)
    param.sum().backward()
    torch.optim.Adam([param]).step()


def _milestone(niter):
    return [max(1, int(0.8 * niter))]


def train_ganzoo(config, image, max_size, niter, samples, out, steps_key):
    from ganzoo.cli.train import make_trainer
    run = os.path.join(out, "run")
    overrides = [f"data.image={image}", f"model.max_size={max_size}", f"model.{steps_key}={niter}",
                 f"train.schedule.milestones={_milestone(niter)}", "run.sample_every=0", "run.ckpt_every=0",
                 "run.log_every=1000000", "run.progress=false", "train.threads=1"]
    trainer = make_trainer(config, overrides, run_dir=run)
    start = clocks()
    trainer.fit()
    seconds = since(start)
    model = trainer.model
    fake = model.sample(n=samples, seed=123)
    return seconds, fake, model.reals[-1], [list(r.shape[2:]) for r in model.reals]


def _stub_official_imports():
    import types

    import numpy as np
    from PIL import Image

    def imread(path):
        return np.asarray(Image.open(path).convert("RGB"))

    class SummaryWriter:
        def __init__(self, *args, **kwargs):
            pass

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    modules = {name: types.ModuleType(name) for name in (
        "skimage", "skimage.io", "skimage.color", "skimage.morphology", "skimage.filters", "imageio",
        "albumentations", "matplotlib", "matplotlib.pyplot", "matplotlib.patches", "torch.utils.tensorboard")}
    modules["skimage.io"].imread = imread
    for name in ("io", "color", "morphology", "filters"):
        setattr(modules["skimage"], name, modules[f"skimage.{name}"])
    for name in ("HueSaturationValue IAAAdditiveGaussianNoise GaussNoise OneOf Compose MultiplicativeNoise ToSepia "
                 "ChannelDropout ChannelShuffle Cutout InvertImg").split():
        setattr(modules["albumentations"], name, None)
    modules["torch.utils.tensorboard"].SummaryWriter = SummaryWriter
    for name, module in modules.items():
        sys.modules.setdefault(name, module)


def train_official(refs, image, max_size, niter, samples, out):
    import torch

    _stub_official_imports()
    sys.path.insert(0, os.path.join(refs, "consingan"))
    from ConSinGAN import functions, training_generation
    from ConSinGAN.config import get_arguments
    functions.save_image = lambda *args, **kwargs: None  # no image writing or sampling inside the timed loop
    training_generation.generate_samples = lambda *args, **kwargs: None
    parser = get_arguments()
    parser.add_argument("--input_name")
    parser.add_argument("--train_mode", default="generation")
    parser.add_argument("--lr_scale", type=float, default=0.1)
    parser.add_argument("--train_stages", type=int, default=6)
    parser.add_argument("--fine_tune", action="store_true")
    parser.add_argument("--gpu", type=int, default=0)
    opt = parser.parse_args(["--not_cuda", "--manualSeed", "0", "--input_name", image, "--max_size", str(max_size),
                             "--niter", str(niter)])
    opt = functions.post_config(opt)
    os.chdir(out)
    start = clocks()
    training_generation.train(opt)
    seconds = since(start)
    folder = functions.generate_dir2save(opt)
    G = torch.load(os.path.join(folder, "G.pth"), weights_only=False)
    reals = torch.load(os.path.join(folder, "reals.pth"), weights_only=False)
    noise_amp = torch.load(os.path.join(folder, "noise_amp.pth"), weights_only=False)
    shapes = [r.shape for r in reals]
    torch.manual_seed(123)
    with torch.no_grad():
        fake = torch.cat([G(functions.sample_random_noise(len(reals) - 1, shapes, opt), shapes, noise_amp)
                          for _ in range(samples)])
    return seconds, fake, reals[-1], [list(s[2:]) for s in shapes]


def score(fake, real, sifid_weights, device="cpu"):
    import torch

    from ganzoo.metrics.diversity import singan_diversity
    from ganzoo.metrics.sifid import SIFIDFeatures, sifid_of_tensors
    from ganzoo.metrics.swd import patch_swd
    fake, real = fake.detach().float().clamp(-1, 1), real.detach().float()
    reals = real.expand(fake.shape[0], -1, -1, -1)
    torch.manual_seed(0)  # the same random Inception for every contender when sifid_weights is "random"
    features = SIFIDFeatures(64, sifid_weights, device)
    to_unit = lambda x: ((x + 1) / 2).clamp(0, 1)  # noqa: E731
    return {"swd": patch_swd(reals, fake)["mean"],
            "sifid": float(sifid_of_tensors(to_unit(reals), to_unit(fake), features).mean()),
            "diversity": singan_diversity(fake, real[0])}


def run_one(a):
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    warm_up()
    if a.one == "official_consingan":
        result = train_official(a.refs, a.image, a.max_size, a.niter, a.samples, a.out)
    elif a.one == "ganzoo_consingan":
        result = train_ganzoo(os.path.join(ROOT, "configs", "consingan.yaml"), a.image, a.max_size, a.niter,
                              a.samples, a.out, "steps_per_stage")
    else:
        result = train_ganzoo(os.path.join(ROOT, "configs", "singan.yaml"), a.image, a.max_size, a.niter,
                              a.samples, a.out, "steps_per_scale")
    seconds, fake, real, sizes = result
    scores = score(fake, real, a.sifid_weights)
    print("RESULT " + json.dumps({"contender": a.one, "train_s": seconds[0], "train_cpu_s": seconds[1],
                                  "sizes": sizes, **scores,
                                  "threads": torch.get_num_threads()}))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="compare_consingan", description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=os.path.join(ROOT, "ganzoo", "assets", "chelsea.png"))
    parser.add_argument("--max-size", type=int, default=60)
    parser.add_argument("--niter", type=int, default=100, help="iterations per stage / scale, all contenders")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sifid-weights", default="random", help="SIFID Inception weights file, or random")
    parser.add_argument("--refs", default=os.path.join(ROOT, "..", "shared", "refs"))
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    a.image = os.path.abspath(a.image)
    if a.one:
        return run_one(a)
    if "official_consingan" in a.only and not os.path.isdir(os.path.join(a.refs, "consingan")):
        parser.error(f"{a.refs}/consingan not found (give --refs)")
    results = []
    for name in a.only:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", name, "--out", tmp, "--image", a.image,
                   "--max-size", str(a.max_size), "--niter", str(a.niter), "--samples", str(a.samples),
                   "--threads", str(a.threads), "--sifid-weights", a.sifid_weights,
                   "--refs", os.path.abspath(a.refs)]
            env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "GANZOO_OFFLINE": "1"}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
                raise SystemExit(f"{name} failed (exit {proc.returncode})")
            results.append(json.loads(lines[-1][len("RESULT "):]))
            r = results[-1]
            print(f"{name:20s} train {r['train_s']:7.1f} s (CPU {r['train_cpu_s']:7.1f} s)  SWD {r['swd']:6.1f}  "
                  f"SIFID {r['sifid']:.4g}  "
                  f"diversity {r['diversity']:.3f}  stages {r['sizes']}", flush=True)
    if a.json:
        from ganzoo.fileio import write_text
        write_text(a.json, json.dumps({"setting": vars(a), "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
