"""Mutation check: does the test suite notice when a feature breaks?

Each mutation replaces one piece of text in one file of a scratch copy of the repository (switching a
feature off) and runs the tests that must catch it. A mutation whose tests still pass *survives*: that
feature is untested. Prints a table; exits 1 if a mutation survives or no longer applies (its text is gone
from the file: update the entry), 2 if the tests fail before any mutation.

    python tools/mutations.py              # every mutation
    python tools/mutations.py -k resume    # those whose name contains "resume"
    python tools/mutations.py --list
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Mutation(NamedTuple):
    name: str
    path: str   # relative to the repository root
    old: str    # must occur exactly once in the file
    new: str
    tests: str  # pytest arguments: files and -k expressions


MUTATIONS = [
    Mutation("DDP gradient sync removed", "ganzoo/engine/trainer.py",
             "use_ddp=distributed.is_distributed()", "use_ddp=False", "tests/test_engine_ddp.py"),
    Mutation("autocast disabled", "ganzoo/engine/context.py",
             'if self.precision == "fp32":\n            return contextlib.nullcontext()',
             "if True:\n            return contextlib.nullcontext()", "tests/test_engine.py -k autocast"),
    Mutation("fp16 GradScaler disabled", "ganzoo/engine/context.py",
             'use_scaler = precision == "fp16"', "use_scaler = False", "tests/test_engine.py -k grad_scaler"),
    Mutation("gradient clipping removed", "ganzoo/engine/context.py",
             "torch.nn.utils.clip_grad_norm_(params, self.grad_clip)", "params",
             "tests/test_engine.py -k grad_clip"),
    Mutation("gradient clipping before unscaling", "ganzoo/engine/context.py",
             "self.scalers[name].unscale_(self.optimizers[name])", "pass",
             "tests/test_engine.py -k grad_clip"),
    Mutation("EMA update removed", "ganzoo/engine/trainer.py",
             "self.ema.update(self._generator(), self.step)", "pass", "tests/test_engine.py -k ema"),
    Mutation("EMA start ignored", "ganzoo/engine/ema.py",
             "weight = 1.0 if step < self.start else 1.0 - self.decay", "weight = 1.0 - self.decay",
             "tests/test_engine.py -k ema"),
    Mutation("LR schedule ignored", "ganzoo/engine/trainer.py",
             "set_lr(self.optimizers, lr_factor(", "(lambda *args: None)(self.optimizers, lr_factor(",
             "tests/test_engine.py -k lr_at_known_steps"),
    Mutation("per-stage LR schedule ignored", "ganzoo/engine/trainer.py",
             'self.stages[index].get("schedule", train["schedule"])', 'train["schedule"]',
             "tests/test_engine.py -k lr_at_known_steps"),
    Mutation("resume: RNG state not restored", "ganzoo/engine/trainer.py",
             "checkpoint.set_rng_state(rng[self.rank])", "pass", "tests/test_engine.py -k resume_is_bit_identical"),
    Mutation("resume: optimizer state not restored", "ganzoo/engine/trainer.py",
             'optimizer.load_state_dict(state["optimizers"][name])', "pass",
             "tests/test_engine.py -k resume_is_bit_identical"),
    Mutation("resume: CLI does not seed before building", "ganzoo/cli/train.py",
             'checkpoint.seed_everything(cfg["run"]["seed"])', "pass",
             "tests/test_engine.py -k resume_is_bit_identical"),
    Mutation("PPM deep-supervision head built but unused", "ganzoo/backbones/segmentation.py",
             "self.unused_file_keys = () if deep_supervision else self.HEAD_KEYS\n        if deep_supervision:",
             "self.unused_file_keys = ()\n        if True:", "tests/test_all_parts.py -k ppm"),
    Mutation("Semantic Pyramid repaint ignores its region", "ganzoo/apps/semantic_pyramid.py",
             "masks[level] = 1.0 - inside", "masks[level] = torch.ones_like(inside)",
             "tests/test_semantic_pyramid.py -k repaint"),
    Mutation("Semantic Pyramid compose ignores the object", "ganzoo/apps/semantic_pyramid.py",
             "generate(model, paste(background, obj, mask), level", "generate(model, background, level",
             "tests/test_semantic_pyramid.py -k compose"),
    Mutation("Semantic Pyramid relabel ignores its class", "ganzoo/apps/semantic_pyramid.py",
             "k, seed, class_ids=class_id)", "k, seed, class_ids=0)", "tests/test_semantic_pyramid.py -k relabel"),
    Mutation("Semantic Pyramid colorize keeps the colours", "ganzoo/apps/semantic_pyramid.py",
             "generate(model, to_gray(images)", "generate(model, images", "tests/test_semantic_pyramid.py -k colorize"),
    Mutation("compile switch ignored", "ganzoo/engine/trainer.py",
             'compile_=train["compile"]', "compile_=False", "tests/test_switches.py -k compile"),
    Mutation("double-backward networks compiled", "ganzoo/engine/distributed.py",
             "if compile_ and name not in model.double_backward_networks:", "if compile_:",
             "tests/test_switches.py -k singan-fp32-compile"),
    Mutation("config: shallow merge of part sections", "ganzoo/config.py",
             "merged[key] = deep_merge(base, value)", "merged[key] = copy.deepcopy(value)",
             "tests/test_config.py -k part_keeps"),
    Mutation("config: model defaults not merged", "ganzoo/engine/options.py",
             '"model": {"type": given["model"]["type"], **getattr(model_cls, "DEFAULTS", {})},',
             '"model": {"type": given["model"]["type"]},', "tests/test_config.py -k fills_every_default"),
    Mutation("config: model/data facts not linked", "ganzoo/engine/options.py",
             '    _link_model_and_data(cfg, stated, getattr(model_cls, "DATA_KEYS", ()), getattr(data_cls, "DEFAULTS", {}))',
             "", "tests/test_config.py -k stated_once"),
    Mutation("config: section typo hint", "ganzoo/config.py", "if i == 0:", "if False:",
             "tests/test_config.py -k misspelled"),
    Mutation("registry: owned value silently overwritten", "ganzoo/registry.py",
             "if key in cfg and cfg[key] != value:", "if False:", "tests/test_registry.py"),
    Mutation("resume: changed config accepted", "ganzoo/cli/train.py",
             "if changes and not allow_changes:", "if False:", "tests/test_train_cli.py -k refuses"),
    Mutation("resume: run files written before the checks", "ganzoo/engine/trainer.py",
             "        if resume_path:\n            self._restore(checkpoint.load(resume_path, device=self.device), resume_path)\n"
             "        self.config_text = dumps(self.cfg)\n        self._write_run_files(resume=bool(resume_path))\n",
             "        self.config_text = dumps(self.cfg)\n        self._write_run_files(resume=bool(resume_path))\n"
             "        if resume_path:\n            self._restore(checkpoint.load(resume_path, device=self.device), resume_path)\n",
             "tests/test_train_cli.py -k another_model"),
    Mutation("resume: no start history in env.json", "ganzoo/engine/trainer.py",
             "starts = previous.get(\"starts\", [previous])", "starts = []", "tests/test_train_cli.py -k refuses"),
    Mutation("ETA: later stages' cost ignored", "ganzoo/engine/trainer.py",
             "total * cost[i] / cost[self.stage] for i", "total for i", "tests/test_train_cli.py -k eta"),
    Mutation("report re-reads log.jsonl", "ganzoo/engine/trainer.py",
             "report.write_index(self.run_dir, self.config_text, self.progress.records,",
             "report.write_index(self.run_dir, self.config_text, report.read_log(self.progress.log_path),",
             "tests/test_train_cli.py -k report"),
    Mutation("spectral norm updates u before v", "ganzoo/layers/spectral_norm.py",
             "            self._v = F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=EPS, out=self._v)\n"
             "            self._u = F.normalize(torch.mv(matrix, self._v), dim=0, eps=EPS, out=self._u)",
             "            self._u = F.normalize(torch.mv(matrix, self._v), dim=0, eps=EPS, out=self._u)\n"
             "            self._v = F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=EPS, out=self._v)",
             "tests/test_layers_losses.py -k spectral_norm"),
    Mutation("sync_bn converts every batch norm", "ganzoo/engine/distributed.py",
             'if getattr(module, "sync_batch", False):', "if isinstance(module, nn.modules.batchnorm._BatchNorm):",
             "tests/test_layers_losses.py -k sync_batch"),
    Mutation("thread tuner keeps the slower count", "ganzoo/engine/threads.py",
             "best = min(self.candidates", "best = max(self.candidates", "tests/test_threads.py"),
    Mutation("thread tuner not used by the trainer", "ganzoo/engine/trainer.py",
             "with self.thread_tuner.step(self.stage):", "with contextlib.nullcontext():",
             "tests/test_threads.py -k real_run"),
    Mutation("CLI swallows bugs as user errors", "ganzoo/cli/common.py",
             "USER_ERRORS = (ValueError, OSError)", "USER_ERRORS = (ValueError, OSError, KeyError, TypeError)",
             "tests/test_cli.py"),
    Mutation("ConSinGAN lr_scale ignored", "ganzoo/models/consingan.py",
             '"lr": c["lr_g"] * c["lr_scale"] ** (len(blocks) - 1 - i)}', '"lr": c["lr_g"]}',
             "tests/test_consingan.py -k lr_scale"),
    Mutation("ConSinGAN concurrent stages off", "ganzoo/models/consingan.py",
             'return list(self.G.body)[-self.cfg["train_depth"]:]', "return list(self.G.body)[-1:]",
             "tests/test_consingan.py -k concurrent"),
    Mutation("ConSinGAN new stage not copied from the last", "ganzoo/nets/consingan.py",
             "self.body.append(copy.deepcopy(self.body[-1]))",
             "self.body.append(init_dcgan_normal(copy.deepcopy(self.body[-1])))",
             "tests/test_consingan.py -k growth_copies"),
    Mutation("ConSinGAN rescaling even like SinGAN", "ganzoo/models/consingan.py",
             'if spacing == "even":', "if True:", "tests/test_consingan.py -k stage_sizes_equal"),
    Mutation("ConSinGAN G steps recompute the gradient", "ganzoo/models/consingan.py",
             'repeat = c["g_step_mode"] == "repeat"', "repeat = False", "tests/test_consingan.py -k repeat_mode"),
    Mutation("ConSinGAN edge upsampling off", "ganzoo/nets/consingan.py",
             "        if self.edge_upsample:\n            x = self._pad(upsample(",
             "        if False:\n            x = self._pad(upsample(", "tests/test_consingan.py -k margins"),
    Mutation("OASIS LabelMix term dropped", "ganzoo/models/oasis.py",
             'losses["d_labelmix"] = self.cfg["lambda_labelmix"] *', 'losses["d_labelmix"] = 0.0 *',
             "tests/test_oasis.py -k labelmix_by_hand"),
    Mutation("OASIS class balancing off", "ganzoo/models/oasis.py",
             '"balance": bool(cfg["class_balance"])', '"balance": False', "tests/test_oasis.py -k labelmix_by_hand"),
    Mutation("OASIS dontcare class weighted", "ganzoo/models/oasis.py",
             '"dontcare": None if dontcare is None else int(dontcare)', '"dontcare": None',
             "tests/test_oasis.py -k labelmix_by_hand"),
    Mutation("OASIS 3D noise ignored", "ganzoo/nets/oasis.py",
             "seg = torch.cat([z, seg], 1)", "seg = torch.cat([torch.zeros_like(z), seg], 1)",
             "tests/test_oasis.py -k multimodal"),
    Mutation("OASIS official D output order kept", "ganzoo/nets/oasis_convert.py",
             "= fake_last(value)", "= value", "tests/test_oasis.py -k official_modules"),
    Mutation("EMA batch-norm statistics not recomputed", "ganzoo/engine/ema.py",
             "                    self.shadow[name].copy_(value)", "                    pass",
             "tests/test_oasis.py -k averaged_weights_own"),
    Mutation("trainer skips the EMA statistics recompute", "ganzoo/engine/trainer.py",
             "ema.recompute_norm_stats(self._generator(), run_forwards)", "pass",
             "tests/test_oasis.py -k resume_equals"),
]


def scratch_copy():
    """A copy of the working tree (without .git, run outputs, downloaded data and caches) in a temporary folder."""
    caches = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")

    def ignore(folder, names):
        top = {".git", "runs", "data", "weights"} if os.path.samefile(folder, ROOT) else set()
        return top | set(caches(folder, names))

    target = os.path.join(tempfile.mkdtemp(prefix="ganzoo-mutations-"), "repo")
    shutil.copytree(ROOT, target, ignore=ignore)
    shared = os.path.join(os.path.dirname(ROOT), "shared")
    if os.path.isdir(shared):  # parity tests read ../shared/refs beside the repository
        os.symlink(shared, os.path.join(os.path.dirname(target), "shared"))
    return target


def run_tests(repo, tests, timeout):
    """pytest's exit code for ``tests`` run in ``repo`` (stop at the first failure), and the seconds taken."""
    env = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        code = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               *tests.split()], cwd=repo, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    return code, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this (case-insensitive)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per test run")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    if not chosen:
        print(f"error: no mutation name contains {args.k!r} (see --list)", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.name:50s} {m.path:36s} {m.tests}")
        return 0

    repo = scratch_copy()
    try:
        found = subprocess.run([sys.executable, "-c", "import ganzoo; print(ganzoo.__file__)"], cwd=repo,
                               env={**os.environ, "PYTHONPATH": repo}, capture_output=True, text=True).stdout
        if not found.startswith(repo):
            sys.exit(f"the scratch copy does not import its own ganzoo (got {found.strip()})")
        selections = sorted({m.tests for m in chosen})
        print(f"baseline: {len(selections)} test selections on the unmutated copy ...", flush=True)
        for tests in selections:
            code, _ = run_tests(repo, tests, args.timeout)
            if code != 0:
                print(f"error: the tests fail before any mutation ({tests}: exit {code}); fix them first")
                return 2
        rows = []
        for m in chosen:
            path = os.path.join(repo, m.path)
            with open(path) as f:
                original = f.read()
            if original.count(m.old) != 1:
                rows.append((m, "STALE", 0.0))
                continue
            with open(path, "w") as f:
                f.write(original.replace(m.old, m.new))
            try:
                code, seconds = run_tests(repo, m.tests, args.timeout)
            finally:
                with open(path, "w") as f:
                    f.write(original)
            rows.append((m, "caught" if code == 1 else "SURVIVED" if code == 0 else f"error {code}", seconds))
            print(f"  {rows[-1][1]:9s} {m.name} ({seconds:.0f} s)", flush=True)
    finally:
        shutil.rmtree(os.path.dirname(repo), ignore_errors=True)

    width = max(len(m.name) for m, _, _ in rows)
    print(f"\n| {'mutation':{width}s} | result   | seconds | tests")
    print(f"|-{'-' * width}-|----------|---------|------")
    for m, result, seconds in rows:
        print(f"| {m.name:{width}s} | {result:8s} | {seconds:7.0f} | {m.tests}")
    bad = [m.name for m, result, _ in rows if result != "caught"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} mutations caught" + (f"; not caught: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
