"""``train.threads``: torch's CPU thread count during training, fixed or chosen by timing steps.

A SinGAN step is thousands of small operators. While another process competes for the cores, every
OpenMP parallel region waits for its slowest thread, and a step can take ten times longer on two threads
than on one; on a quiet machine two threads are faster. ``auto`` therefore measures: at the start of each
stage, and again once the time since the last trial is ``1 / BUDGET`` times what that trial took, it runs
a few steps at each candidate count (1 and the count torch started with) and keeps the faster.

Thread counts change only between steps, never inside a backward pass. The count changes float summation
order in some CPU kernels (SinGAN's finest quick-start scale differs after 3 steps), so ``auto`` is not
bit-reproducible: ``log.jsonl`` records the count, and ``run.deterministic`` keeps it fixed.
"""
import contextlib
import statistics
import time

import torch


BUDGET = 0.05     # after a trial, the next one waits 1 / BUDGET times that trial's cost
ROUNDS = 3        # timed steps per candidate in one trial
CLEAR_WIN = 2.0   # one round decides when the fastest count's step is this many times faster than any other


def for_run(setting, device, world_size=1, deterministic=False, compiled=False, report=None):
    """The :class:`ThreadTuner` of ``train.threads``: ``auto`` tunes on a single CPU process, unless
    ``run.deterministic`` or ``train.compile`` (the thread count is one of torch.compile's guards: every
    change would recompile every network); an integer fixes the count; elsewhere the count torch has is
    kept. ``setting`` was validated by :func:`ganzoo.engine.options.load_config`."""
    current = torch.get_num_threads()
    if setting != "auto":
        candidates = (setting,)
    elif device.type == "cpu" and world_size == 1 and not deterministic and not compiled:
        candidates = (1, current)
    else:
        candidates = (current,)
    return ThreadTuner(candidates, report=report)


class ThreadTuner:
    """Sets the thread count of each training step (:meth:`step`) and keeps the fastest candidate.

    A trial interleaves the candidates step by step, so that a change of load hits all of them alike: up
    to ``ROUNDS`` timed rounds, the median wins, or the first round already when one count wins it clearly
    (under contention a slow count's step can cost a hundred fast ones: it is run as few times as possible).
    At a stage start the first step, which carries the stage's one-off work, runs untimed before the trial.
    """

    def __init__(self, candidates, clock=time.perf_counter, report=None):
        self.candidates = sorted(set(candidates))
        self.threads = self.candidates[-1]  # the count used outside trials
        self.clock, self.report = clock, report
        self._restore = torch.get_num_threads()
        self._stage, self._plan, self._times = None, [], {}
        self._first_of_stage, self._trial_cost, self._next_trial = False, 0.0, 0.0

    @contextlib.contextmanager
    def step(self, stage):
        """Wraps one training step of stage ``stage``."""
        if len(self.candidates) > 1:
            if stage != self._stage:
                self._stage = stage
                self._begin_trial(stage_start=True)
            elif not self._plan and self.clock() >= self._next_trial:
                self._begin_trial(stage_start=False)
        threads, timed = self._plan[0] if self._plan else (self.threads, False)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        start = self.clock()
        yield
        if self._plan:
            self._plan.pop(0)
            elapsed = self.clock() - start
            self._trial_cost += elapsed
            if timed:
                self._times[threads].append(elapsed)
                self._maybe_decide()

    def close(self):
        """Give torch back the thread count it had when this tuner was made."""
        torch.set_num_threads(self._restore)

    def _begin_trial(self, stage_start):
        rounds = [(c, True) for _ in range(ROUNDS) for c in self.candidates]
        self._plan = [(self.threads, False)] * stage_start + rounds
        self._times = {c: [] for c in self.candidates}
        self._first_of_stage, self._trial_cost = stage_start, 0.0

    def _maybe_decide(self):
        counts = {len(times) for times in self._times.values()}
        if len(counts) > 1:  # mid-round
            return
        best = min(self.candidates, key=lambda c: statistics.median(self._times[c]))
        clear = all(max(self._times[best]) * CLEAR_WIN <= min(self._times[c])
                    for c in self.candidates if c != best)
        if not (clear or counts == {ROUNDS}):
            return
        self._plan = []
        self._next_trial = self.clock() + self._trial_cost / BUDGET
        changed, self.threads = best != self.threads, best
        if self.report is not None and (changed or self._first_of_stage):
            timings = ", ".join(f"{c}: {statistics.median(self._times[c]):.3g}" for c in self.candidates)
            self.report(f"stage {self._stage}: {best} thread{'s' * (best > 1)} "
                        f"(median s/step by thread count {timings})")
