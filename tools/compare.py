"""Side-by-side speed of ganzoo and a reference implementation, measured in one invocation (a checkout tool:
it runs ``tools/benchmark.py`` and ``configs/`` of this repository and the references beside it).

    python tools/compare.py {spade,singan,semantic_pyramid,fid,frechet,segment_drn,segment_deeplab} [--rounds N] [--refs PATH]
        [--ref-python PY] [--steps N] [--warmup W] [--json OUT] [--device cpu|cuda] [-- key=value ...]

Each round runs the reference harness and ganzoo's benchmark (tools/benchmark.py) once each, as
separate processes, in alternating order, at the same setting; the peak RSS of each process is
read from ``os.wait4``. The ratio of medians over the rounds is printed (> 1: ganzoo is faster).
References are looked up in ``../shared/refs`` next to the repository, or ``--refs PATH``; the
harnesses in the ``bench`` folder beside it (``--bench PATH``). They need extra packages (dill,
scikit-image, scikit-learn, matplotlib, imageio): give a python that has them with ``--ref-python``.
Overrides after ``--`` go to ganzoo's side only (e.g. a config key you are experimenting with).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ganzoo.cli.common import positive_int, run_cli  # noqa: E402
from ganzoo.fileio import write_text  # noqa: E402

BENCHMARK = os.path.join(ROOT, "tools", "benchmark.py")

# ---------------------------------------------------------------- the cases
# Each case: what is compared, the unit ("img/s": higher is better; "s": lower is better), the
# reference command and ganzoo's, and how to read the number from their output.

SPADE_SETTING = {"batch": 2, "crop": 128, "ngf": 32}
SP_SETTING = {"batch": 2}
SINGAN_SETTING = {"image": "balloons.png", "max_size": 100, "niter": 100}
FID_SETTING = {"images": 64, "size": 256, "batch": 32, "workers": 1, "dims": 2048}


def training_step_benchmark(a, config, batch, *overrides):
    """tools/benchmark.py timing ``a.steps`` training steps of ``configs/<config>`` (no sampling)."""
    return [sys.executable, BENCHMARK, os.path.join(ROOT, "configs", config), "--batch", str(batch),
            "--steps", str(a.steps), "--warmup", str(a.warmup), "--repeat", "1", "--sample-repeat", "0",
            "--device", a.device, *overrides, *a.overrides]


def ref_img_per_s(out, tmp):
    return json_line(out)["img_per_s"]


def benchmark_img_per_s(out, tmp):
    return json_line(out, "JSON ")["img_per_s"]


def spade_case(a):
    s = SPADE_SETTING
    ref = [a.ref_python, os.path.join(a.bench, "bench_spade_ref.py"), "--batch", str(s["batch"]),
           "--crop", str(s["crop"]), "--ngf", str(s["ngf"]), "--steps", str(a.steps), "--warmup", str(a.warmup)]
    ours = training_step_benchmark(a, "spade_ade20k.yaml", s["batch"],
                                   f"model.crop_size={s['crop']}", f"data.crop_size={s['crop']}",
                                   f"data.load_size={s['crop']}", f"model.generator.ngf={s['ngf']}",
                                   "model.vgg.weights=random")
    return {"unit": "img/s", "ref_name": "NVlabs/SPADE (bench_spade_ref.py)", "ref": ref, "ours": ours,
            "setting": f"SPADE train step (1 G + 1 D), crop {s['crop']}, ngf {s['ngf']}, batch {s['batch']}, "
                       f"151 labels, no VAE, random VGG19, fp32, {a.steps} timed steps after {a.warmup} warm-up",
            "parse_ref": ref_img_per_s, "parse_ours": benchmark_img_per_s}


def semantic_pyramid_case(a):
    s = SP_SETTING
    ref = [a.ref_python, os.path.join(a.bench, "bench_sp_ref.py"), "--batch", str(s["batch"]),
           "--steps", str(a.steps), "--warmup", str(a.warmup), "--device", a.device]
    ours = training_step_benchmark(a, "semantic_pyramid.yaml", s["batch"], "model.backbone.weights=random")
    return {"unit": "img/s", "ref_name": "ChristophReich1996 (bench_sp_ref.py)", "ref": ref, "ours": ours,
            "setting": f"Semantic Pyramid train iteration (1 D + 1 G step), 256x256, batch {s['batch']}, "
                       f"random VGG16 (365 classes), fp32, {a.steps} timed steps after {a.warmup} warm-up",
            "parse_ref": ref_img_per_s, "parse_ours": benchmark_img_per_s}


def singan_case(a):
    s = dict(SINGAN_SETTING, niter=a.niter or SINGAN_SETTING["niter"])
    source = os.path.join(a.refs, "singan", "Input", "Images", s["image"])
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source} not found (the SinGAN comparison trains on the reference's image)")

    def setup(tmp):
        shutil.copy(source, os.path.join(tmp, s["image"]))

    ref = [a.ref_python, os.path.join(a.refs, "singan", "time_train.py"), "--manualSeed", "1",
           "--input_dir", "{tmp}", "--input_name", s["image"], "--max_size", str(s["max_size"]),
           "--niter", str(s["niter"]), "--timing_out", "{tmp}/ref_timing.json"]
    if a.device == "cpu":
        ref.insert(2, "--not_cuda")
    ours = [sys.executable, BENCHMARK, os.path.join(ROOT, "configs", "singan.yaml"), "--data", "real", "--full",
            "--sample-repeat", "0", "--device", a.device, "--json", "{tmp}/ours.json",
            f"data.image={{tmp}}/{s['image']}", f"model.max_size={s['max_size']}",
            f"model.steps_per_scale={s['niter']}", *a.overrides]
    return {"unit": "s", "ref_name": "tamarott/SinGAN (time_train.py)", "ref": ref, "ours": ours, "setup": setup,
            "setting": f"SinGAN training wall-clock, {s['image']}, max_size {s['max_size']}, "
                       f"{s['niter']} iterations per scale, all scales, fp32",
            "parse_ref": parse_singan_ref, "parse_ours": parse_singan_ours}


def parse_singan_ref(out, tmp):
    with open(os.path.join(tmp, "ref_timing.json")) as f:
        timing = json.load(f)
    return {"value": timing["train_seconds"],
            "scales": [{"size": [s["H"], s["W"]], "seconds": round(s["seconds"], 3)} for s in timing["scales"]]}


def parse_singan_ours(out, tmp):
    with open(os.path.join(tmp, "ours.json")) as f:
        result = json.load(f)
    return {"value": result["train_seconds"],
            "scales": [{"size": s["size"], "seconds": round(s["repeats_s"][0] + s["setup_s"], 3)}
                       for s in result["stages"]]}


FID_REF_DRIVER = """
import json, sys, time, numpy as np, torch
from pytorch_fid.fid_score import compute_statistics_of_path
from pytorch_fid.inception import InceptionV3
folder, batch, workers, dims, device, out, n = sys.argv[1:8]
model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[int(dims)]]).to(device).eval()
t = time.perf_counter()
mu, sigma = compute_statistics_of_path(folder, model, int(batch), int(dims), device, int(workers))
dt = time.perf_counter() - t
np.savez(out, mu=mu, sigma=sigma)
print("RESULT " + json.dumps({"img_per_s": int(n) / dt, "seconds": dt, "threads": torch.get_num_threads()}))
"""

FID_OURS_DRIVER = """
import json, sys, time, numpy as np, torch
sys.path.insert(0, sys.argv[8])
from ganzoo.metrics.fid import FIDFeatures, path_statistics
folder, batch, workers, dims, device, out, n = sys.argv[1:8]
features = FIDFeatures(int(dims), None, device)
t = time.perf_counter()
mu, sigma = path_statistics(folder, features, int(batch), int(workers), cache_dir=False, check=False)
dt = time.perf_counter() - t
np.savez(out, mu=mu, sigma=sigma)
print("RESULT " + json.dumps({"img_per_s": int(n) / dt, "seconds": dt, "threads": torch.get_num_threads()}))
"""


def fid_case(a):
    s = {**FID_SETTING, **{key: value for key, value in
                           (("images", a.fid_images), ("batch", a.fid_batch), ("workers", a.fid_workers))
                           if value is not None}}

    def setup(tmp):
        prepare_fid_inputs(tmp, s["images"], s["size"])

    args = ["{tmp}/images", str(s["batch"]), str(s["workers"]), str(s["dims"]), a.device]
    return {"unit": "img/s", "ref_name": "pytorch-fid (compute_statistics_of_path)", "setup": setup,
            "env": {"TORCH_HOME": "{tmp}/torch"},
            "ref": [a.ref_python, "-c", FID_REF_DRIVER, *args, "{tmp}/ref.npz", str(s["images"])],
            "ours": [sys.executable, "-c", FID_OURS_DRIVER, *args, "{tmp}/ours.npz", str(s["images"]), ROOT],
            "setting": f"FID feature extraction, {s['images']} random {s['size']}x{s['size']} PNGs, dims "
                       f"{s['dims']}, batch {s['batch']}, {s['workers']} loader worker(s), random-weight "
                       "pytorch-fid Inception, fp32",
            "parse_ref": lambda out, tmp: json_line(out, "RESULT ")["img_per_s"],
            "parse_ours": lambda out, tmp: json_line(out, "RESULT ")["img_per_s"],
            "check": compare_fid_stats}


FRECHET_DRIVER = """
import json, sys, time, numpy as np
dims, impl, device, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
a, b = rng.standard_normal((2, dims, 2 * dims)) / np.sqrt(2 * dims)
sigma1, sigma2 = a @ a.T, b @ b.T
mu1, mu2 = rng.standard_normal((2, dims))
if impl == "ref":
    from pytorch_fid.fid_score import calculate_frechet_distance as distance
    kwargs = {}
else:
    sys.path.insert(0, root)
    from ganzoo.metrics.frechet import frechet_distance as distance
    kwargs = {"device": device}
t = time.perf_counter()
value = float(distance(mu1, sigma1, mu2, sigma2, **kwargs))
dt = time.perf_counter() - t
print("RESULT " + json.dumps({"seconds": dt, "value": value}))
"""


def frechet_case(a):
    dims = FID_SETTING["dims"]
    values = {}

    def parse(side):
        def read(out, tmp):
            result = json_line(out, "RESULT ")
            values.setdefault(side, []).append(result["value"])
            return result["seconds"]
        return read

    def check(ref_dir, ours_dir):
        ref, ours = values.get("ref", [None])[-1], values.get("ours", [None])[-1]
        if ref is None or ours is None:
            return {}
        return {"value_ref": ref, "value_ours": ours, "rel_diff": abs(ref - ours) / abs(ref)}

    return {"unit": "s", "ref_name": "pytorch-fid calculate_frechet_distance (scipy sqrtm)",
            "ref": [a.ref_python, "-c", FRECHET_DRIVER, str(dims), "ref", a.device, ROOT],
            "ours": [sys.executable, "-c", FRECHET_DRIVER, str(dims), "ours", a.device, ROOT],
            "setting": f"Fréchet distance of two {dims}-dim Gaussians (float64), statistics of random data",
            "parse_ref": parse("ref"), "parse_ours": parse("ours"), "check": check}


SEGMENT_SETTING = {"segment_drn": {"images": 4, "batch": 1, "height": 256, "width": 512},
                   "segment_deeplab": {"images": 4, "batch": 1, "height": 256, "width": 256}}

# Both sides: random weights, random images, the official test path of each network (DRN: logits at the
# input size -> argmax; DeepLab: MSC max fusion -> logits upsampled to the image size -> argmax); one
# untimed warm-up batch, then img/s over the timed ones, no grad.
SEGMENT_DRIVER = """
import json, math, re, sys, time, torch
impl, which, refs, root, images, batch, height, width, device = sys.argv[1:10]
images, batch, height, width = int(images), int(batch), int(height), int(width)
torch.manual_seed(0)
x = torch.rand(batch, 3, height, width, device=device) * 2 - 1
if impl == "ref" and which == "segment_drn":
    sys.path.insert(0, refs + "/drn")
    import drn
    from torch import nn
    path = refs + "/drn/segment.py"   # the file as a whole is Python 2 syntax: compile its DRNSeg only
    keep, blocks = None, []
    for line in open(path).read().splitlines(keepends=True):
        if line[:1] and not line[0].isspace() and not line.startswith("#"):
            m = re.match(r"(?:def|class)\\s+(\\w+)", line)
            keep = m is not None and m.group(1) in ("fill_up_weights", "DRNSeg")
        if keep:
            blocks.append(line)
    ns = {"math": math, "nn": nn, "torch": torch, "drn": drn}
    exec(compile("".join(blocks), path, "exec"), ns)
    net = ns["DRNSeg"]("drn_d_105", 19, pretrained=False).to(device).eval()
    mean = torch.tensor([0.290, 0.328, 0.287], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.183, 0.187, 0.184], device=device).view(1, 3, 1, 1)
    run = lambda x: net(((x + 1) / 2 - mean) / std)[0].argmax(1)
elif impl == "ref":
    sys.path.insert(0, refs + "/deeplab")
    import torch.nn.functional as F
    from libs.models import DeepLabV2_ResNet101_MSC
    net = DeepLabV2_ResNet101_MSC(182).to(device).eval()
    mean = torch.tensor([104.008, 116.669, 122.675], device=device).view(1, 3, 1, 1)
    def run(x):
        logits = net((x.flip(1) + 1) * 127.5 - mean)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False).argmax(1)
else:
    sys.path.insert(0, root)
    from ganzoo.registry import BACKBONES
    name = {"segment_drn": "drn_d_105_cityscapes", "segment_deeplab": "deeplabv2_cocostuff"}[which]
    net = BACKBONES.build({"type": name, "weights": "random"}).to(device).eval()
    run = lambda x: net(x, out_size=x.shape[2:]).argmax(1)
with torch.no_grad():
    run(x)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    done = 0
    while done < images:
        run(x)
        done += batch
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
print("RESULT " + json.dumps({"img_per_s": done / dt, "seconds": dt}))
"""


def segment_case(name):
    def case(a):
        s = SEGMENT_SETTING[name]
        args = [name, a.refs, ROOT, str(s["images"]), str(s["batch"]), str(s["height"]), str(s["width"]), a.device]
        network = {"segment_drn": "DRN-D-105 (fyu/drn DRNSeg, 19 classes)",
                   "segment_deeplab": "DeepLabV2 ResNet-101 MSC (kazuto1011/deeplab-pytorch, 182 classes)"}[name]
        return {"unit": "img/s", "ref_name": network,
                "ref": [a.ref_python, "-c", SEGMENT_DRIVER, "ref", *args],
                "ours": [sys.executable, "-c", SEGMENT_DRIVER, "ours", *args],
                "setting": f"segmentation inference, {s['images']} random {s['width']}x{s['height']} images, "
                           f"batch {s['batch']}, random weights, fp32, no grad (official test path)",
                "parse_ref": lambda out, tmp: json_line(out, "RESULT ")["img_per_s"],
                "parse_ours": lambda out, tmp: json_line(out, "RESULT ")["img_per_s"]}
    return case


CASES = {"spade": spade_case, "semantic_pyramid": semantic_pyramid_case, "singan": singan_case,
         "fid": fid_case, "frechet": frechet_case, "segment_drn": segment_case("segment_drn"),
         "segment_deeplab": segment_case("segment_deeplab")}
NEEDS_REFS = {"spade": "spade", "semantic_pyramid": "semantic_pyramid", "singan": "singan",
              "segment_drn": "drn", "segment_deeplab": "deeplab"}


def prepare_fid_inputs(tmp, count, size):
    """Random PNGs and a random-weight pytorch-fid Inception in a private TORCH_HOME (no download)."""
    import numpy as np
    import torch
    from PIL import Image

    from ganzoo.backbones.inception import FID_WEIGHTS, build_fid_inception_v3
    folder = os.path.join(tmp, "images")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            os.path.join(folder, f"{i:05d}.png"))
    checkpoints = os.path.join(tmp, "torch", "hub", "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    torch.manual_seed(0)
    torch.save(build_fid_inception_v3().state_dict(), os.path.join(checkpoints, FID_WEIGHTS))


# ---------------------------------------------------------------- running

def json_line(text, prefix=""):
    """The last line of ``text`` that starts with ``prefix`` and parses as JSON (prefix removed)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(prefix + "{"):
            try:
                return json.loads(line[len(prefix):])
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON result line{' starting with ' + prefix.strip() if prefix else ''} in the output")


def run_process(argv, cwd, env):
    """Run to completion; returns (returncode, output, wall seconds, peak RSS in GB of that process)."""
    with tempfile.TemporaryFile(mode="w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        return proc.returncode, log.read(), wall, usage.ru_maxrss * 1024 / 2**30


def fill(items, tmp):
    return [str(x).replace("{tmp}", tmp) for x in items]


def run_case(name, case, rounds, threads=None, log=print, after_round=None):
    sides = {"ref": [], "ours": []}
    extra = []
    with tempfile.TemporaryDirectory(prefix=f"compare_{name}_") as base:
        shared = os.path.join(base, "shared")
        os.makedirs(shared)
        if case.get("setup"):
            case["setup"](shared)
        for r in range(rounds):
            order = ("ref", "ours") if r % 2 == 0 else ("ours", "ref")
            for side in order:
                tmp = os.path.join(base, f"{side}{r}")
                os.makedirs(tmp)
                for entry in os.listdir(shared):   # inputs every run sees (e.g. SinGAN's image)
                    os.symlink(os.path.join(shared, entry), os.path.join(tmp, entry))
                env = dict(os.environ, **{k: v.replace("{tmp}", tmp) for k, v in case.get("env", {}).items()})
                if threads:   # both sides: torch reads these at start-up
                    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
                rc, out, wall, rss = run_process(fill(case[side], tmp), cwd=tmp, env=env)
                if rc != 0:
                    tail = "\n".join(out.strip().splitlines()[-15:])
                    raise ChildProcessError(f"{name}: the {side} run failed (exit {rc}):\n{tail}")
                parsed = case["parse_" + side](out, tmp)   # a number, or a dict with "value" and details
                record = dict(parsed) if isinstance(parsed, dict) else {"value": parsed}
                value = record["value"]
                sides[side].append({**record, "wall_s": round(wall, 2), "peak_rss_gb": round(rss, 3)})
                log(f"round {r + 1}/{rounds} {side:4s}: {value:.4g} {case['unit']}, peak RSS {rss:.2f} GB")
            if case.get("check"):   # e.g. equal values: the two runs of a round wrote to ref<r>/, ours<r>/
                extra.append(case["check"](os.path.join(base, f"ref{r}"), os.path.join(base, f"ours{r}")))
            if after_round:
                after_round(sides, extra)
    return sides, extra


def compare_fid_stats(ref_dir, ours_dir):
    import numpy as np
    r, o = np.load(os.path.join(ref_dir, "ref.npz")), np.load(os.path.join(ours_dir, "ours.npz"))
    return {"max_rel_diff_mu": float(np.abs(r["mu"] - o["mu"]).max() / np.abs(r["mu"]).max()),
            "max_rel_diff_sigma": float(np.abs(r["sigma"] - o["sigma"]).max() / np.abs(r["sigma"]).max())}


def summarize(name, case, sides, extra, args):
    med = {side: statistics.median(v["value"] for v in runs) for side, runs in sides.items()}
    rss = {side: statistics.median(v["peak_rss_gb"] for v in runs) for side, runs in sides.items()}
    ratio = (lambda ref, ours: ours / ref) if case["unit"] == "img/s" else (lambda ref, ours: ref / ours)
    speedup = ratio(med["ref"], med["ours"])
    # the two runs of one round ran back to back, so their ratio is less exposed to drifting load
    paired = [ratio(r["value"], o["value"]) for r, o in zip(sides["ref"], sides["ours"])]
    import torch
    return {"case": name, "setting": case["setting"], "unit": case["unit"], "rounds": len(sides["ours"]),
            "reference": case["ref_name"], "median_ref": med["ref"], "median_ours": med["ours"],
            "speedup": round(speedup, 3), "paired_speedups": [round(x, 3) for x in paired],
            "median_paired_speedup": round(statistics.median(paired), 3), "peak_rss_gb_ref": rss["ref"], "peak_rss_gb_ours": rss["ours"],
            "runs": sides, "checks": extra, "device": args.device,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "threads": args.threads or torch.get_num_threads(),
            "ref_python": args.ref_python,
            "command": "python tools/compare.py " + " ".join(args.argv)}


def build_parser():
    p = argparse.ArgumentParser(prog="compare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("--rounds", type=positive_int, default=3, help="alternating rounds (each runs both sides once)")
    p.add_argument("--refs", default=os.path.join(os.path.dirname(ROOT), "shared", "refs"),
                   help="folder holding the reference implementations (default: ../shared/refs)")
    p.add_argument("--bench", default=None, help="folder of the reference harnesses (default: <refs>/../bench)")
    p.add_argument("--ref-python", default=sys.executable,
                   help="python that runs the references (needs dill, scikit-image, ... ; default: this one)")
    p.add_argument("--steps", type=positive_int, default=4, help="timed training steps per run")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--niter", type=positive_int, default=None, help="singan: iterations per scale (default 100)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--fid-images", type=positive_int, default=None,
                   help=f"fid: random PNGs (default {FID_SETTING['images']})")
    p.add_argument("--fid-batch", type=positive_int, default=None,
                   help=f"fid: batch size (default {FID_SETTING['batch']})")
    p.add_argument("--fid-workers", type=int, default=None,
                   help=f"fid: image decode workers (default {FID_SETTING['workers']}; use 8 on a GPU machine)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="OMP/MKL threads for both sides (default: torch's default, all cores)")
    p.add_argument("--json", default=None, metavar="OUT")
    return p


def main(argv=None):
    """``compare CASE [flags] [-- key=value ...]``: the overrides after ``--`` go to ganzoo's side only."""
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]

    def run(args):
        args.overrides, args.argv = overrides, argv + (["--"] + overrides if overrides else [])
        args.refs = os.path.abspath(args.refs)
        args.bench = os.path.abspath(args.bench or os.path.join(os.path.dirname(args.refs), "bench"))
        return compare(args)

    return run_cli(build_parser(), run, argv)


def compare(args):
    need = NEEDS_REFS.get(args.case)
    if need and not os.path.isdir(os.path.join(args.refs, need)):
        raise FileNotFoundError(
            f"reference implementations not found: {os.path.join(args.refs, need)} does not exist; pass "
            f"--refs PATH (the folder holding spade/, singan/, semantic_pyramid/). Without them, "
            f"tools/benchmark.py still measures ganzoo alone")
    if args.case in ("spade", "semantic_pyramid") and not os.path.isdir(args.bench):
        raise FileNotFoundError(f"reference harnesses not found in {args.bench}; pass --bench PATH")
    case = CASES[args.case](args)
    print(f"{args.case}: {case['setting']}\nreference: {case['ref_name']} with {args.ref_python}", flush=True)

    def save_partial(sides, extra):   # a long comparison cut short still leaves its rounds
        if args.json:
            write_text(args.json, json.dumps(summarize(args.case, case, sides, extra, args), indent=1) + "\n")

    sides, extra = run_case(args.case, case, args.rounds, args.threads, log=lambda m: print(m, flush=True),
                            after_round=save_partial)
    result = summarize(args.case, case, sides, extra, args)
    better = "faster" if result["speedup"] >= 1 else "slower"
    print(f"median reference {result['median_ref']:.4g} {case['unit']}, ganzoo {result['median_ours']:.4g} "
          f"{case['unit']} over {args.rounds} alternating rounds: ganzoo {result['speedup']:.2f}x ({better}; "
          f"per round {', '.join(f'{x:.2f}' for x in result['paired_speedups'])}, median "
          f"{result['median_paired_speedup']:.2f}x); "
          f"peak RSS reference {result['peak_rss_gb_ref']:.2f} GB, ganzoo {result['peak_rss_gb_ours']:.2f} GB")
    for check in extra:
        if check:
            print("check: " + json.dumps(check))
    print("JSON " + json.dumps(result), flush=True)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
