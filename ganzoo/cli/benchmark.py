"""Time training steps and sampling of any config on the current device.

    python tools/benchmark.py CONFIG [--steps N] [--warmup W] [--repeat R] [--precision fp32|bf16|fp16]
        [--batch B] [--channels-last] [--compile] [--profile OUT] [--json OUT] [key=value ...]

The model is built from the config through MODELS and fed synthetic batches in the dataset's format
(``image`` in [-1, 1]; ``label`` maps and ``class`` ids when the config names a number of labels or
classes), so nothing has to be downloaded: point pretrained backbones at random weights with overrides.
``--data real`` takes the batches from the config's dataset instead (SinGAN needs its one image).
Each stage is entered by the trainer (:meth:`Trainer.enter_stage`), so ``train_step`` runs with the
trainer's StepContext; the flags are config overrides (``--precision bf16`` = ``train.precision=bf16``,
``--device`` = ``run.device``) loaded with the config. After ``W`` warm-up steps,
``R`` repeats of ``N`` steps are timed (CUDA events on GPU, ``perf_counter`` on CPU) and the median
is reported. Multi-stage models (SinGAN's scales) are timed stage by stage: iterations/s per stage;
``--full`` instead runs every stage's whole schedule once (the training wall-clock). Sampling is
timed too. The result is printed and, with ``--json``, written as JSON.
"""
import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time

from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import write_text

# Config keys (searched in data, then model) that give the synthetic inputs' shape.
SIZE_KEYS = ("crop_size", "image_size", "size", "resolution", "max_size")
LABEL_KEYS = ("label_nc", "num_labels", "semantic_nc")
CLASS_KEYS = ("num_classes", "n_classes")
CHANNEL_KEYS = ("image_channels", "nc_im", "output_nc")


def build_parser():
    p = argparse.ArgumentParser(prog="benchmark", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="YAML config (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. model.generator.ngf=32)")
    p.add_argument("--steps", type=positive_int, default=5, help="timed training steps per repeat (per stage)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (per stage)")
    p.add_argument("--repeat", type=positive_int, default=3, help="timed repeats; the median is reported")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                   help="autocast precision (default: the config's train.precision, else fp32)")
    p.add_argument("--batch", type=positive_int, default=None, help="batch size (default: train.batch_size)")
    p.add_argument("--size", type=int, default=None,
                   help="synthetic image size when the config names none (default 64)")
    p.add_argument("--channels-last", action="store_true", help="networks and inputs in channels_last")
    p.add_argument("--compile", action="store_true", help="torch.compile every network (Module.compile)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ... (default: the config's run.device)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--data", choices=("synthetic", "real"), default="synthetic",
                   help="synthetic batches (default) or the first items of the config's dataset")
    p.add_argument("--stages", default=None,
                   help="multi-stage models: comma-separated stage indices to time (default: all)")
    p.add_argument("--full", action="store_true",
                   help="run every stage's whole schedule once, no warm-up: training wall-clock")
    p.add_argument("--sample-repeat", type=int, default=3, help="timed model.sample calls (0: skip)")
    p.add_argument("--profile", default=None, metavar="OUT",
                   help="write a torch.profiler table of the top operators of a few training steps")
    p.add_argument("--profile-steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="OUT", help="also write the result as JSON")
    return p


def flag_overrides(args):
    """The config overrides the flags stand for (a flag not given leaves the config's value)."""
    flags = [("train.precision", args.precision), ("train.batch_size", args.batch), ("run.device", args.device),
             ("train.channels_last", args.channels_last or None), ("train.compile", args.compile or None)]
    return [f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in flags
            if value is not None]


# ---------------------------------------------------------------- inputs

def _find(cfg, keys, sections=("data", "model")):
    """First int (or [h, w]) value of any of ``keys`` in the config sections, then one level deeper."""
    def usable(value):
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value))

    for section in sections:
        node = cfg.get(section) or {}
        nodes = [node] + [value for value in node.values() if isinstance(value, dict)]
        for candidate in nodes:
            for key in keys:
                if usable(candidate.get(key)):
                    return candidate[key]
    return None


def input_spec(cfg, size=None):
    """What a synthetic sample looks like: image channels/size, number of labels, classes."""
    found = _find(cfg, SIZE_KEYS)
    size = size or found or 64
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    label_nc = _find(cfg, LABEL_KEYS)
    if label_nc is not None and any((cfg.get(section) or {}).get("contain_dontcare_label")
                                    for section in ("data", "model")):
        label_nc += 1
    return {"channels": _find(cfg, CHANNEL_KEYS) or 3, "height": int(height), "width": int(width),
            "label_nc": label_nc, "num_classes": _find(cfg, CLASS_KEYS)}


class SyntheticDataset:
    """Random samples in the dataset format: image in [-1, 1], label map, class id (fixed per index)."""

    def __init__(self, spec, length=64, seed=0):
        self.spec, self.length, self.seed = spec, length, seed

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        import torch
        s = self.spec
        g = torch.Generator().manual_seed(self.seed * 100003 + index)
        item = {"image": torch.rand(s["channels"], s["height"], s["width"], generator=g) * 2 - 1,
                "path": f"synthetic_{index:05d}.png"}
        if s["label_nc"]:
            item["label"] = torch.randint(0, int(s["label_nc"]), (1, s["height"], s["width"]), generator=g)
        if s["num_classes"]:
            item["class"] = torch.randint(0, int(s["num_classes"]), (), generator=g)
        return item


def first_batch(dataset, batch_size):
    """Collate the first ``batch_size`` items (cycling when the dataset is smaller)."""
    import torch
    items = [dataset[i % len(dataset)] for i in range(batch_size)]
    return torch.utils.data.default_collate(items)


# ---------------------------------------------------------------- model

def count_parameters(model):
    return {name: sum(p.numel() for p in net.parameters()) for name, net in model.networks().items()}


# ---------------------------------------------------------------- timing

class Clock:
    """Elapsed seconds of a code block: CUDA events on GPU, perf_counter on CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    @contextlib.contextmanager
    def measure(self, out):
        import torch
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end) / 1000.0)
        else:
            t0 = time.perf_counter()
            yield
            out.append(time.perf_counter() - t0)


def time_calls(fn, steps, warmup, repeat, clock):
    """Seconds per repeat of ``steps`` calls of ``fn`` after ``warmup`` untimed calls."""
    import torch
    for _ in range(warmup):
        fn()
    if clock.cuda:
        torch.cuda.synchronize()
    seconds = []
    for _ in range(repeat):
        with clock.measure(seconds):
            for _ in range(steps):
                fn()
    return seconds


def peak_memory(device):
    import torch
    if device.type == "cuda":
        return {"peak_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 3),
                "peak_kind": "cuda_max_memory_allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    rss_bytes = rss if sys.platform == "darwin" else rss * 1024
    return {"peak_gb": round(rss_bytes / 2**30, 3), "peak_kind": "cpu_ru_maxrss"}


def profile_table(fn, steps, device, row_limit=30):
    """torch.profiler table of the top operators of ``steps`` calls of ``fn``, sorted by self time."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("train_step"):
                fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort, row_limit=row_limit)


# ---------------------------------------------------------------- benchmark

def environment(device):
    import torch
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
            f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
            "device_type": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def run(cfg, args, log=print):
    """Run the benchmark described by ``args`` on ``cfg`` (from ``load_config``, flags included); returns the
    result dict. The trainer is built but never started, so nothing is written but ``--profile``/``--json``."""
    import torch

    from ganzoo.device import to_device
    from ganzoo.engine import options
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import MODELS

    if args.threads:
        torch.set_num_threads(args.threads)
    train = cfg["train"]
    precision, batch_size = train["precision"], train["batch_size"]
    channels_last, compile_nets = train["channels_last"], train["compile"]
    torch.manual_seed(args.seed)

    model = MODELS.build(cfg["model"])
    if args.data == "real":
        dataset = options.build_dataset(cfg["data"])
        if len(dataset) == 0:
            raise ValueError(f"the dataset of {args.config} is empty")
    else:
        dataset = SyntheticDataset(input_spec(cfg, args.size), length=batch_size, seed=args.seed)
    trainer = Trainer(model, dataset, cfg)
    device = trainer.device
    batch_cpu = first_batch(dataset, batch_size)
    model.prepare(dataset)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clock = Clock(device)
    batch = to_device(batch_cpu, device, channels_last)
    image = batch_cpu["image"]

    trainer.stages = stages = model.stages()
    multi = len(stages) > 1
    chosen = range(len(stages))
    if args.stages:
        try:
            chosen = [int(i) for i in args.stages.split(",")]
        except ValueError:
            raise ValueError(f"--stages must be comma-separated integers, got {args.stages!r}") from None
        bad = [i for i in chosen if not 0 <= i < len(stages)]
        if bad:
            raise ValueError(f"--stages {bad[0]} out of range: the model has {len(stages)} stage(s)")

    result = {"config": args.config, "overrides": list(args.overrides), "model": cfg["model"].get("type"),
              **environment(device), "precision": precision, "batch": batch_size,
              "size": [int(image.shape[-2]), int(image.shape[-1])], "channels_last": channels_last,
              "compile": compile_nets, "data": args.data, "steps": args.steps, "warmup": args.warmup,
              "repeat": args.repeat, "full": args.full}
    stage_results, profiled = [], None
    train_seconds = 0.0
    model.train()
    for index in range(len(stages)):
        entered = time.perf_counter()
        trainer.enter_stage(index)
        ctx = trainer.ctx
        ctx.stage = index
        if clock.cuda:
            torch.cuda.synchronize(device)
        setup_s = time.perf_counter() - entered   # e.g. SinGAN: build the scale's nets, noise amplitude
        if index not in chosen:
            continue

        def step():
            model.train_step(batch, ctx)
            ctx.step += 1
            ctx.stage_step += 1

        stage_steps = stages[index].get("steps") or train["steps"]
        if args.full:
            if not stage_steps:
                raise ValueError(f"--full needs the number of steps of stage {index} (stage or train.steps)")
            seconds = time_calls(step, int(stage_steps), 0, 1, clock)
        else:
            seconds = time_calls(step, args.steps, args.warmup, args.repeat, clock)
        steps_timed = int(stage_steps) if args.full else args.steps
        per_step = statistics.median(seconds) / steps_timed
        train_seconds += statistics.median(seconds) + (setup_s if args.full else 0.0)
        shape = _stage_shape(model, index, image)
        record = {"stage": index, "name": stages[index].get("name", str(index)), "size": shape,
                  "it_per_s": round(1.0 / per_step, 4), "img_per_s": round(batch_size / per_step, 4),
                  "seconds_per_it": round(per_step, 6), "repeats_s": [round(s, 4) for s in seconds],
                  "setup_s": round(setup_s, 4),
                  "schedule_steps": stage_steps}
        stage_results.append(record)
        log(f"stage {index} ({record['name']}{', %dx%d' % tuple(shape) if shape else ''}): "
            f"{record['it_per_s']:.3f} it/s, {record['img_per_s']:.3f} img/s, "
            f"{per_step * 1000:.1f} ms/it (median of {len(seconds)})")
        if args.profile and profiled is None and (not multi or index == max(chosen)):
            profiled = profile_table(step, args.profile_steps, device)

    last = stage_results[-1]
    result.update({"img_per_s": last["img_per_s"], "it_per_s": last["it_per_s"],
                   "seconds_per_it": last["seconds_per_it"]})
    if multi:
        result["stages"] = stage_results
        result["train_seconds"] = round(train_seconds, 3)
    else:
        result["repeats_s"] = last["repeats_s"]
    result["params"] = count_parameters(model)

    if args.sample_repeat > 0:
        model.eval()
        seconds = []
        with torch.no_grad():
            call = lambda: model.sample(batch=batch, n=batch_size, seed=args.seed)  # noqa: E731
            seconds = time_calls(call, 1, 1, args.sample_repeat, clock)
        result["sample"] = {"img_per_s": round(batch_size / statistics.median(seconds), 4),
                            "seconds": round(statistics.median(seconds), 5), "n": batch_size}
        model.train()
    result.update(peak_memory(device))
    if profiled is not None:
        header = (f"# torch.profiler: {args.profile_steps} training steps of {args.config} "
                  f"({result['model']}), batch {batch_size}, {precision}, device {result['device']}, "
                  f"threads {result['threads']}\n")
        write_text(args.profile, header + profiled + "\n")
        result["profile"] = args.profile
    return result


def _stage_shape(model, index, image):
    """Spatial size trained at stage ``index`` when the model says (e.g. SinGAN's pyramid ``reals``)."""
    import torch
    for attr in ("stage_sizes", "reals"):
        sizes = getattr(model, attr, None)
        try:
            item = sizes[index]
            h, w = (item.shape if torch.is_tensor(item) else item)[-2:]
            return [int(h), int(w)]
        except (TypeError, IndexError, ValueError):
            continue
    return None


def summary(result):
    lines = [f"{result['model']} on {result['device']} (torch {result['torch']}, {result['threads']} threads), "
             f"{result['precision']}, batch {result['batch']}, size {result['size'][0]}x{result['size'][1]}"
             f"{', channels_last' if result['channels_last'] else ''}{', compiled' if result['compile'] else ''}"]
    if "stages" in result:
        lines.append(f"train: {len(result['stages'])} stages timed, {result['train_seconds']:.2f} s "
                     f"({'full schedule, stage set-up included' if result['full'] else 'timed steps only'})")
    else:
        lines.append(f"train: {result['img_per_s']:.3f} img/s ({result['seconds_per_it'] * 1000:.1f} ms/step, "
                     f"median of {result['repeat']} x {result['steps']} steps)")
    if "sample" in result:
        lines.append(f"sample: {result['sample']['img_per_s']:.3f} img/s")
    lines.append(f"peak memory: {result['peak_gb']:.3f} GB ({result['peak_kind']})")
    return "\n".join(lines)


def main(argv=None):
    return run_cli(build_parser(), command, argv, intermixed=True)


def command(args):
    """The tool: load the config with the flags as overrides, run, print (and write) the result."""
    require_path(args.config, "config")
    from ganzoo.engine.options import load_config
    cfg = load_config(args.config, [*args.overrides, *flag_overrides(args)])
    result = run(cfg, args, log=lambda msg: print(msg, flush=True))
    print(summary(result))
    print("JSON " + json.dumps(result), flush=True)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
