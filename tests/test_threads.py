"""``train.threads``: the thread tuner's decisions on a fake clock, and one real run through the trainer."""
import json

import pytest
import torch

from ganzoo.config import ConfigError
from ganzoo.engine import threads
from ganzoo.engine.threads import BUDGET, ROUNDS, ThreadTuner

CONTENDED = {1: 0.16, 2: 1.5}   # s/step: two threads collapse while another process runs
QUIET = {1: 0.46, 2: 0.28}      # two threads win on idle cores


class FakeClock:
    """A clock that only moves when a fake step runs for its cost at the current thread count."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def keep_thread_count():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run_steps(tuner, clock, costs, n, stage=0):
    """Run ``n`` fake steps; returns the thread count each one ran with."""
    seen = []
    for _ in range(n):
        with tuner.step(stage):
            seen.append(torch.get_num_threads())
            clock.now += costs[seen[-1]]
            assert torch.get_num_threads() == seen[-1]
    return seen


def make_tuner(report=None):
    clock = FakeClock()
    return ThreadTuner((1, 2), clock=clock, report=report), clock


@pytest.mark.parametrize("costs, best", [(CONTENDED, 1), (QUIET, 2)])
def test_keeps_the_faster_count(costs, best):
    tuner, clock = make_tuner()
    seen = run_steps(tuner, clock, costs, 20)
    assert tuner.threads == best
    assert seen[-5:] == [best] * 5


def test_a_stage_starts_with_one_untimed_step_then_interleaved_rounds():
    tuner, clock = make_tuner()
    # the untimed first step carries the stage's set-up: were it timed, 1 thread would win
    costs = iter([5.0] + [QUIET[1], QUIET[2]] * ROUNDS + [QUIET[2]] * 3)
    seen = []
    for _ in range(1 + 2 * ROUNDS + 3):
        with tuner.step(0):
            seen.append(torch.get_num_threads())
            clock.now += next(costs)
    assert seen == [2] + [1, 2] * ROUNDS + [2] * 3
    assert tuner.threads == 2


def test_a_clear_winner_ends_the_trial_after_one_round():
    tuner, clock = make_tuner()
    seen = run_steps(tuner, clock, CONTENDED, 8)
    assert seen == [2, 1, 2] + [1] * 5


def test_re_measures_once_the_budget_allows_and_follows_the_load():
    tuner, clock = make_tuner()
    run_steps(tuner, clock, QUIET, 1 + 2 * ROUNDS)
    assert tuner.threads == 2
    trial_cost = QUIET[2] + ROUNDS * (QUIET[1] + QUIET[2])  # the untimed first step, then the rounds
    wait = trial_cost / BUDGET
    # load arrives: two threads slow down, but nothing is re-measured before the budget allows
    seen = run_steps(tuner, clock, CONTENDED, int(wait / CONTENDED[2]))
    assert set(seen) == {2}
    seen = run_steps(tuner, clock, CONTENDED, 10)
    assert seen[:3] == [2, 1, 2] and tuner.threads == 1  # the next trial: one round, 1 wins clearly
    assert seen[3:] == [1] * 7


def test_a_new_stage_is_measured_again():
    messages = []
    tuner, clock = make_tuner(report=messages.append)
    run_steps(tuner, clock, QUIET, 12, stage=0)
    seen = run_steps(tuner, clock, CONTENDED, 6, stage=1)
    assert seen == [2, 1, 2, 1, 1, 1]
    assert len(messages) == 2
    assert messages[0].startswith("stage 0: 2 threads") and messages[1].startswith("stage 1: 1 thread ")


def test_trials_stay_within_the_budget_on_a_long_stage():
    tuner, clock = make_tuner()
    seen = run_steps(tuner, clock, QUIET, 3000)
    extra = seen.count(1) * (QUIET[1] - QUIET[2])
    assert extra <= BUDGET * clock.now
    assert seen.count(1) > 1 + ROUNDS  # it did measure again


def test_a_fixed_count_is_set_for_the_steps_and_given_back():
    torch.set_num_threads(2)
    tuner = threads.for_run(1, torch.device("cpu"))
    seen = run_steps(tuner, FakeClock(), QUIET, 5)
    assert seen == [1] * 5
    tuner.close()
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("device, world, deterministic, compiled, candidates", [
    ("cpu", 1, False, False, [1, 2]),
    ("cuda", 1, False, False, [2]),
    ("cpu", 2, False, False, [2]),
    ("cpu", 1, True, False, [2]),
    ("cpu", 1, False, True, [2]),   # a thread-count change is a torch.compile guard: it would recompile
])
def test_auto_tunes_only_a_single_cpu_process(device, world, deterministic, compiled, candidates):
    torch.set_num_threads(2)
    tuner = threads.for_run("auto", torch.device(device), world, deterministic, compiled)
    assert tuner.candidates == candidates


@pytest.mark.parametrize("value", [0, -1, "fast", 1.5, True, None])
def test_bad_settings_are_one_line_config_errors(value):
    from ganzoo.engine.options import load_config
    cfg = {"model": {"type": "tests.toy_gan:ToyGAN"}, "train": {"threads": value}}
    with pytest.raises(ConfigError, match="train.threads must be auto or a positive integer"):
        load_config(cfg)


@pytest.mark.parametrize("setting", ["auto", 1])
def test_a_real_run_logs_its_thread_count_and_gives_it_back(tmp_path, capsys, setting):
    from ganzoo.engine.options import load_config
    from ganzoo.engine.trainer import Trainer
    from tests.toy_gan import ToyData, ToyGAN

    class CountingGAN(ToyGAN):
        def train_step(self, batch, ctx):
            counts.append(torch.get_num_threads())
            return super().train_step(batch, ctx)

    counts = []
    torch.set_num_threads(2)
    cfg = {"model": {"type": "tests.toy_gan:ToyGAN"}, "data": {"type": "tests.toy_gan:ToyData", "n": 8},
           "train": {"steps": 12, "batch_size": 4, "threads": setting}, "eval": {},
           "run": {"log_every": 2, "sample_every": 0, "ckpt_every": 0, "progress": False}}
    Trainer(CountingGAN(), ToyData(n=8), load_config(cfg), run_dir=str(tmp_path)).fit()
    assert torch.get_num_threads() == 2
    logged = [json.loads(line)["threads"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    if setting == "auto":
        assert counts[:3] == [2, 1, 2]  # the stage's first step, then the trial's first round
        assert set(logged) <= {1, 2} and "stage 0: " in capsys.readouterr().err
    else:
        assert counts == [1] * 12 and logged == [1] * 6
