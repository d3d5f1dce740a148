"""The one trainer: stages, steps, LR schedules, EMA, logging, samples, eval, checkpoints, resume, DDP.

``Trainer(model, dataset, cfg).fit()`` where ``cfg`` is the whole config (sections ``train``, ``run``,
``eval`` and the loader keys of ``data`` are read here; ``model`` is stored for :func:`load_model`).

Resume order (mirrors a straight run exactly): ``prepare(dataset)`` -> ``begin_stage(0..k)`` replayed
-> ``load_state_dict`` -> optimizers rebuilt from ``param_groups()`` and loaded -> RNG states restored.
"""
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time

import torch
from torch.utils.data import DataLoader, DistributedSampler, default_collate

import ganzoo
from ganzoo.config import ConfigError, dumps
from ganzoo.device import to_device
from ganzoo.engine import checkpoint, distributed, options, report, threads
from ganzoo.engine.context import StepContext
from ganzoo.engine.ema import EMA
from ganzoo.engine.optim import build_optimizers, current_lr, lr_factor, set_lr
from ganzoo.engine.progress import Progress, truncate_jsonl
from ganzoo.fileio import write_json, write_text
from ganzoo.layers.checkpointing import checkpoint_activations
from ganzoo.metrics.evaluate import run_metrics
from ganzoo.modes import eval_mode

_NEVER = 2 ** 62  # "no non-finite loss seen" marker of the per-loss first-bad-step counters


class NonFiniteLossError(RuntimeError):
    pass


class ResumableSampler(DistributedSampler):
    """DistributedSampler (also for one process) that can start an epoch after its first ``skip`` indices."""
    skip = 0

    def set_epoch(self, epoch, skip=0):
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self):
        return max(0, self.num_samples - self.skip)


def configure_backends(deterministic, device):
    """``run.deterministic``: deterministic algorithms and cuDNN; else cuDNN autotuning on CUDA."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def environment(device, world_size, seed):
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(ganzoo.__file__)))
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    import numpy
    return {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
        "ganzoo": ganzoo.__version__, "git_sha": sha, "seed": seed, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "cuda": torch.version.cuda, "world_size": world_size, "host": platform.node(),
        "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


class Trainer:
    def __init__(self, model, dataset, cfg, run_dir=None, resume=None, resume_hint=None):
        """``cfg``: a complete config from :func:`options.load_config`; the run directory is ``run_dir`` if
        given (it is written into the config), else ``run.dir``.

        ``resume``: ``None`` (fresh run), ``True`` (the run dir's ``latest``) or a checkpoint/run path.
        ``resume_hint``: the command that continues this run, printed when a signal stops it.
        """
        self.cfg = cfg
        self.train_cfg, self.run_cfg, self.eval_cfg = self.cfg["train"], self.cfg["run"], self.cfg["eval"]
        self.model, self.dataset = model, dataset
        if run_dir:
            self.run_cfg["dir"] = str(run_dir)
        self.run_dir = self.run_cfg["dir"]
        self.resume, self.resume_hint = resume, resume_hint
        self.device, self.rank, self.world = distributed.init_from_env(self.run_cfg["device"])
        self.is_main = self.rank == 0
        configure_backends(self.run_cfg["deterministic"], self.device)
        self.thread_tuner = threads.for_run(self.train_cfg["threads"], self.device, self.world,
                                            self.run_cfg["deterministic"], self.train_cfg["compile"],
                                            report=lambda text: self.progress.message(text))
        self.step = self.stage = self.stage_step = self.epoch = self.batch_in_epoch = 0
        self.optimizers, self.ctx, self.ema = {}, None, None
        self.metric_records = []
        self._signal = None
        self._last_saved = None
        self._ema_stats_step = None

    # ---- setup ---------------------------------------------------------------------------------

    def _setup(self):
        """Every check first (data, metrics, model, stages, the checkpoint to resume); only then is the run
        directory written, so a run that cannot start leaves nothing behind."""
        run, train = self.run_cfg, self.train_cfg
        self.ckpt_dir = os.path.join(self.run_dir, "checkpoints")
        resume_path = None
        if self.resume:
            resume_path = checkpoint.resolve(self.run_dir if self.resume is True else self.resume)
        elif checkpoint.list_checkpoints(self.ckpt_dir):
            raise ConfigError(f"run directory {self.run_dir} already has checkpoints: pass --resume to continue "
                              "it or choose another --run-dir")
        self._build_loader()
        self.sample_batch = self._fixed_batch()
        from ganzoo.registry import METRICS
        self.metrics = [METRICS.build(entry) for entry in self.eval_cfg["metrics"]] if self.is_main else []

        self.model.train()
        self._check_memory_levers()
        self.model.prepare(self.dataset)
        self.stages = self.model.stages()
        self.totals = [self._stage_steps(i) for i in range(len(self.stages))]
        self.costs = [float(stage.get("cost", 1.0)) for stage in self.stages]  # relative cost of one step
        self.ema = EMA(**train["ema"]) if train["ema"] else None
        if resume_path:
            self._restore(checkpoint.load(resume_path, device=self.device), resume_path)
        self.config_text = dumps(self.cfg)
        self._write_run_files(resume=bool(resume_path))
        self.progress = Progress(self.run_dir, enabled=self.is_main, bar=run["progress"],
                                 tensorboard=run["tensorboard"])
        if resume_path:
            self.progress.records = report.read_log(self.progress.log_path)
            self.progress.message(f"resumed from {resume_path} at step {self.step} (stage {self.stage}, "
                                  f"step {self.stage_step} of {self.totals[self.stage]})")
        else:
            checkpoint.seed_everything(run["seed"] + self.rank)

    def _check_memory_levers(self):
        name = type(self.model).__name__
        if self.train_cfg["accumulate"] > 1 and not self.model.supports_accumulation:
            raise ConfigError(f"train.accumulate: {name} does not accumulate gradients (its batch is one image "
                              "or it has no support yet); use train.accumulate: 1")
        if self.train_cfg["checkpoint_activations"] and not self.model.supports_activation_checkpointing:
            raise ConfigError(f"train.checkpoint_activations: {name} does not support activation checkpointing")

    def _write_run_files(self, resume):
        if not self.is_main:
            return
        for sub in ("", "samples", "checkpoints"):
            os.makedirs(os.path.join(self.run_dir, sub), exist_ok=True)
        write_text(os.path.join(self.run_dir, "config.yaml"), self.config_text)
        env_path = os.path.join(self.run_dir, "env.json")
        starts = []
        if resume and os.path.isfile(env_path):
            with open(env_path) as f:
                previous = json.load(f)
            starts = previous.get("starts", [previous])
        starts.append(environment(self.device, self.world, self.run_cfg["seed"]))
        write_json(env_path, {"starts": starts})  # one entry per start: the first run, then each resume
        log_path = os.path.join(self.run_dir, "log.jsonl")
        write_json(os.path.join(self.run_dir, "metrics.json"), self.metric_records)
        if resume:
            truncate_jsonl(log_path, self.step)
        elif os.path.isfile(log_path):
            os.remove(log_path)  # a fresh run's log starts empty
        images = self.sample_batch.get("image") if isinstance(self.sample_batch, dict) else None
        if torch.is_tensor(images):  # the training data beside the samples in index.html
            report.save_grid(images, os.path.join(self.run_dir, "samples", report.TRAINING_DATA))

    def _build_loader(self):
        train, loader_cfg = self.train_cfg, options.split_data(self.cfg.get("data"))[1]
        if len(self.dataset) == 0:
            raise ValueError("the training dataset is empty")
        self.sampler = ResumableSampler(self.dataset, num_replicas=self.world, rank=self.rank, shuffle=True,
                                        seed=self.run_cfg["seed"])
        # drop the ragged last batch (static shapes) unless there is not a single full batch
        drop_last = self.sampler.num_samples >= train["batch_size"]
        self.steps_per_epoch = (self.sampler.num_samples // train["batch_size"] if drop_last
                                else 1)
        pin = loader_cfg["pin_memory"]
        self.loader = DataLoader(self.dataset, batch_size=train["batch_size"], sampler=self.sampler,
                                 num_workers=loader_cfg["num_workers"], drop_last=drop_last,
                                 pin_memory=self.device.type == "cuda" if pin is None else pin,
                                 generator=torch.Generator())

    def _batches(self):
        """Endless batches; ``epoch``/``batch_in_epoch`` always say how many were consumed (for resume)."""
        while True:
            self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch * self.train_cfg["batch_size"])
            # the loader's own generator seeds workers, so the global RNG is not consumed here
            self.loader.generator.manual_seed(self.run_cfg["seed"] * 1_000_003 + self.rank * 7919 + self.epoch)
            for batch in self.loader:
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def _fixed_batch(self):
        n = min(self.run_cfg["sample_count"], len(self.dataset))
        with torch.random.fork_rng(devices=[]):  # same batch (even with random augmentation) on resume
            torch.manual_seed(self.run_cfg["seed"])
            return self._to_device(default_collate([self.dataset[i] for i in range(n)]))

    def _to_device(self, batch):
        return to_device(batch, self.device, self.train_cfg["channels_last"])

    def _stage_steps(self, index):
        steps = self.stages[index].get("steps")
        if steps is None:
            steps = self.train_cfg["steps"]
        if steps is None and self.train_cfg["epochs"]:
            steps = self.train_cfg["epochs"] * self.steps_per_epoch
        if steps is None:
            raise ConfigError("set train.steps or train.epochs (how long to train)")
        return int(steps)

    def enter_stage(self, index, begin=True):
        """Start stage ``index``: ``begin_stage`` (unless resuming), wrap networks, fresh optimizers."""
        train = self.train_cfg
        if getattr(self, "_sums", None):
            self._read_losses()  # a loss that went non-finite in the last steps of the previous stage
        distributed.unwrap_networks(self.model)
        if begin:
            self.model.begin_stage(index)
        if train["checkpoint_activations"]:
            for module in self.model.activation_checkpoint_modules():
                checkpoint_activations(module)
        memory_format = torch.channels_last if train["channels_last"] else torch.preserve_format
        self.model.to(self.device, memory_format=memory_format)
        distributed.broadcast_state(self.model)
        distributed.wrap_networks(self.model, self.device, sync_bn=train["sync_bn"],
                                  use_ddp=distributed.is_distributed(), compile_=train["compile"],
                                  find_unused=train["find_unused_parameters"])
        self.optimizers = build_optimizers(self.model.param_groups(), train["optim"], self.device)
        self.ctx = StepContext(self.optimizers, self.device, train["precision"], grad_clip=train["grad_clip"],
                               accumulate=train["accumulate"])
        self.schedule = options.check_schedule(self.stages[index].get("schedule", train["schedule"]),
                                               f"stage {index} schedule")
        self._sums, self._first_bad, self._window = {}, {}, (time.perf_counter(), self.step)

    def _generator(self):
        name = self.model.generator_name
        try:
            return distributed.unwrap(distributed.get_network(self.model, name))
        except AttributeError:
            raise ValueError(f"{type(self.model).__name__} has no generator attribute {name!r} "
                             "(generator_name) for train.ema") from None

    # ---- the loop ------------------------------------------------------------------------------

    def fit(self, stop_after=None):
        """Train to the end (or until global step ``stop_after``, then checkpoint as if interrupted).

        Returns ``{"status": "done"|"stopped"|"interrupted", "step", "checkpoint", "signal"}``.
        """
        self._setup()
        handlers = self._install_signal_handlers()
        try:
            result = self._run(stop_after)
            # rank 0 writes the last checkpoint, samples and report alone: ranks leave together, since a
            # peer that tears the gloo group down while rank 0 is still busy aborts the process
            distributed.barrier()
            return result
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.progress.close()
            self.thread_tuner.close()
            distributed.unwrap_networks(self.model)

    def _run(self, stop_after):
        batches = self._batches()
        entered = self.ctx is not None  # a resume has already entered its stage
        while self.stage < len(self.stages):
            total = self.totals[self.stage]
            if not entered:
                self.enter_stage(self.stage)
            entered = False
            self.progress.start_stage(self.stage, len(self.stages), self.stages[self.stage].get("name", "train"),
                                      self.stage_step, total)
            while self.stage_step < total:
                with self.thread_tuner.step(self.stage):
                    self._train_step(next(batches), total)
                self.step += 1
                self.stage_step += 1
                self.progress.advance()
                self._periodic()
                stop = self._stop_requested()
                if stop or (stop_after is not None and self.step >= stop_after):
                    path = self._save()
                    if stop:
                        hint = f" Continue with: {self.resume_hint}" if self.resume_hint else ""
                        self.progress.message(f"{stop} received: stopped after step {self.step}; "
                                              f"checkpoint {path}.{hint}")
                    self._write_index()
                    return {"status": "interrupted" if stop else "stopped", "signal": stop,
                            "step": self.step, "checkpoint": path}
            self.stage += 1
            self.stage_step = 0
        self.stage, self.stage_step = len(self.stages) - 1, self.totals[-1]  # "last stage, finished"
        distributed.broadcast_state(self.model)  # e.g. BN running stats: every rank ends with rank 0's
        path = self._save()
        if self.run_cfg["sample_every"]:
            self._sample()
        every = self.eval_cfg["every"]
        if self.eval_cfg["metrics"] and not (every and self.step % every == 0):  # same answer on every rank
            self._evaluate()
        self._write_index()
        return {"status": "done", "signal": None, "step": self.step, "checkpoint": path}

    def _train_step(self, batch, total):
        ctx = self.ctx
        ctx.step, ctx.stage, ctx.stage_step = self.step, self.stage, self.stage_step
        set_lr(self.optimizers, lr_factor(self.schedule, self.stage_step, total, self.steps_per_epoch))
        losses = self.model.train_step(self._to_device(batch), ctx)
        if self.ema is not None:
            self.ema.update(self._generator(), self.step)
        for name, value in (losses or {}).items():
            value = torch.as_tensor(value, device=self.device).detach().float().mean()
            if name not in self._sums:
                self._sums[name] = torch.zeros((), device=self.device)
                self._first_bad[name] = torch.full((), _NEVER, dtype=torch.int64, device=self.device)
            self._sums[name] += value
            seen = torch.isfinite(value) | (self._first_bad[name] != _NEVER)
            self._first_bad[name] = torch.where(seen, self._first_bad[name], self.step + 1)

    def _periodic(self):
        run, step = self.run_cfg, self.step
        due = lambda every: every and step % every == 0  # noqa: E731
        if due(run["log_every"]):
            self._log()
        if due(run["sample_every"]):
            self._sample()
        if due(self.eval_cfg["every"]):
            self._evaluate()
        if due(run["ckpt_every"]):
            self._save()
        if due(run["log_every"]) or due(run["sample_every"]):
            self._write_index()

    # ---- losses, logs, non-finite guard --------------------------------------------------------

    def _read_losses(self):
        """``{name: sum}`` over ranks since the last log, after checking that every loss stayed finite."""
        names = sorted(self._sums)
        if not names:
            return {}
        sums = distributed.all_reduce(torch.stack([self._sums[n] for n in names]))
        first_bad = distributed.all_reduce(torch.stack([self._first_bad[n] for n in names]), op="min")
        sums, first_bad = sums.tolist(), first_bad.tolist()
        bad = [(step, name, value) for name, value, step in zip(names, sums, first_bad) if step != _NEVER]
        if bad:
            step, name, value = min(bad)
            last = checkpoint.list_checkpoints(self.ckpt_dir)
            kept = f"last good checkpoint: {last[-1]}" if last else "no checkpoint was written"
            raise NonFiniteLossError(f"loss {name!r} became non-finite ({value}) at step {step} "
                                     f"(stage {self.stage}); training stopped, {kept}")
        return dict(zip(names, sums))

    def _log(self):
        sums = self._read_losses()
        start_time, start_step = self._window
        now = time.perf_counter()
        steps = max(self.step - start_step, 1)
        sec_per_step = (now - start_time) / steps
        # later stages scaled by their cost per step relative to this one (SinGAN's finer scales cost more)
        cost = self.costs
        remaining = (self.totals[self.stage] - self.stage_step) + sum(
            total * cost[i] / cost[self.stage] for i, total in enumerate(self.totals) if i > self.stage)
        record = {
            "step": self.step, "stage": self.stage, "stage_name": self.stages[self.stage].get("name", "train"),
            "stage_step": self.stage_step, "epoch": self.epoch,
            "losses": {name: value / (steps * self.world) for name, value in sums.items()},
            "lr": current_lr(self.optimizers),
            "img_per_s": self.train_cfg["batch_size"] * self.world / max(sec_per_step, 1e-9),
            "sec_per_step": sec_per_step, "eta_s": remaining * sec_per_step, "threads": self.thread_tuner.threads,
            "time": time.time(),
        }
        self.progress.log(record)
        for value in self._sums.values():
            value.zero_()
        self._window = (time.perf_counter(), self.step)

    # ---- samples and eval (fp32, eval mode, EMA weights, training RNG untouched) -----------------

    @contextlib.contextmanager
    def _inference(self):
        devices = [self.device] if self.device.type == "cuda" else []
        with distributed.unwrapped(self.model), eval_mode(self.model), torch.no_grad(), \
                torch.random.fork_rng(devices=devices), contextlib.ExitStack() as stack:
            if self.ema is not None and self.ema.shadow:
                stack.enter_context(self.ema.swapped_in(self._generator()))
            yield self.model

    def _refresh_ema_norm_stats(self):
        """``train.ema.norm_stats_batches`` training batches (at most one pass over the data, as OASIS's loop)
        through the EMA generator in train mode (once per step, on every rank, before samples, eval and
        checkpoints), on a loader of its own and with every RNG restored after, so training is unchanged."""
        ema = self.ema
        if ema is None or not ema.norm_stats_batches or not ema.shadow or self._ema_stats_step == self.step:
            return
        self._ema_stats_step = self.step
        rng = checkpoint.rng_state()
        loader_cfg = options.split_data(self.cfg.get("data"))[1]
        generator = torch.Generator().manual_seed(self.run_cfg["seed"] * 1_000_003 + self.rank * 7919 + self.step)
        loader = DataLoader(self.dataset, batch_size=self.train_cfg["batch_size"], shuffle=True,
                            num_workers=loader_cfg["num_workers"], generator=generator)

        def run_forwards():
            for _, batch in zip(range(ema.norm_stats_batches), loader):
                self.model.norm_stats_forward(self._to_device(batch))

        try:
            with distributed.unwrapped(self.model):
                ema.recompute_norm_stats(self._generator(), run_forwards)
        finally:
            checkpoint.set_rng_state(rng)

    def _sample(self):
        self._refresh_ema_norm_stats()
        if not self.is_main:
            return
        with self._inference() as model:
            images = model.sample(batch=self.sample_batch, n=self.run_cfg["sample_count"], seed=self.run_cfg["seed"])
        report.save_grid(images, os.path.join(self.run_dir, "samples", f"step_{self.step:08d}.png"))

    def _evaluate(self):
        if self.eval_cfg["metrics"]:  # the same answer on every rank
            self._refresh_ema_norm_stats()
        if self.is_main and self.metrics:
            with self._inference() as model:
                results = run_metrics(self.metrics, model, self.dataset, self.device)
            numbers = {k: v for k, v in results.items() if isinstance(v, float)}
            self.metric_records.append({"step": self.step, "stage": self.stage, **results})
            write_json(os.path.join(self.run_dir, "metrics.json"), self.metric_records)
            self.progress.scalars("eval", numbers, self.step)
            self.progress.message(f"eval at step {self.step}: " +
                                  ", ".join(f"{k}={v:.5g}" for k, v in numbers.items()))
        distributed.barrier()

    def _write_index(self):
        if self.is_main:
            report.write_index(self.run_dir, self.config_text, self.progress.records, self.metric_records,
                               title=f"{self.cfg['model']['type']} - {self.run_dir}",
                               show_epoch=self.steps_per_epoch > 1)

    # ---- checkpoints ---------------------------------------------------------------------------

    def _save(self):
        """Checkpoint the current step (after checking the losses are finite); returns its path."""
        if self._last_saved and self._last_saved[0] == self.step:
            return self._last_saved[1]
        self._refresh_ema_norm_stats()
        self._read_losses()
        rng = distributed.all_gather_object(checkpoint.rng_state())
        path = os.path.join(self.ckpt_dir, checkpoint.checkpoint_name(self.step))
        if self.is_main:
            with distributed.unwrapped(self.model):
                model_state = self.model.state_dict()
            state = {
                "format": checkpoint.FORMAT, "model": model_state,
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "scalers": {n: s.state_dict() for n, s in self.ctx.scalers.items()},
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": rng, "config": self.cfg, "world_size": self.world,
                "progress": {"step": self.step, "stage": self.stage, "stage_step": self.stage_step,
                             "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch},
                "metrics": self.metric_records,
            }
            path = checkpoint.save(state, self.ckpt_dir, self.step, keep_last=self.run_cfg["keep_last"])
        distributed.barrier()
        self._last_saved = (self.step, path)
        return path

    def _restore(self, state, path):
        """Weights, optimizers, scalers, EMA, metrics and RNG from ``state``, before anything is written: a
        checkpoint of another model is a one-line error."""
        progress = state["progress"]
        for index in range(progress["stage"] + 1):
            self.model.begin_stage(index)
        misfit = f"checkpoint {path} does not fit the model built from the config"
        try:
            result = self.model.load_state_dict(state["model"], strict=False)
        except RuntimeError as err:  # tensors of other shapes
            lines = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
            raise ConfigError(f"{misfit}: {lines[0] if lines else str(err).splitlines()[0]}") from None
        for label, keys in (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)):
            if keys:
                raise ConfigError(f"{misfit}: {len(keys)} {label} tensors (e.g. {keys[0]})")
        for key in ("step", "stage", "stage_step", "epoch", "batch_in_epoch"):
            setattr(self, key, progress[key])
        self.enter_stage(self.stage, begin=False)
        for name, optimizer in self.optimizers.items():
            base = [group["base_lr"] for group in optimizer.param_groups]  # the config's LR wins
            optimizer.load_state_dict(state["optimizers"][name])
            for group, lr in zip(optimizer.param_groups, base):
                group["base_lr"] = lr
            if state["scalers"].get(name):
                self.ctx.scalers[name].load_state_dict(state["scalers"][name])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.metric_records = [m for m in state.get("metrics", []) if m["step"] <= self.step]
        rng = state["rng"]
        if self.rank < len(rng):
            checkpoint.set_rng_state(rng[self.rank])
        else:
            checkpoint.seed_everything(self.run_cfg["seed"] + self.rank + self.step)
        self._last_saved = (self.step, path)

    # ---- signals -------------------------------------------------------------------------------

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum, frame):
            if self._signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now
            self._signal = signal.Signals(signum).name

        return {signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}

    def _stop_requested(self):
        """The signal name once a stop was requested; under DDP agreed by all ranks at log steps."""
        if not distributed.is_distributed():
            return self._signal
        every = self.run_cfg["log_every"] or 1
        if self.step % every:
            return None
        flag = distributed.all_reduce(torch.tensor([self._signal is not None], dtype=torch.int32,
                                                   device=self.device), op="max")
        return (self._signal or "SIGTERM") if bool(flag.item()) else None
