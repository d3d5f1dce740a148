"""Two CPU processes under torchrun (gloo): DDP keeps the ranks' weights identical while they train on different
batches, and training finishes with identical networks and a run directory written by rank 0 alone."""
import json
import os
import subprocess
import sys
import textwrap

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = """
import os, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from ganzoo.cli.train import make_trainer
from ganzoo.engine import distributed

# the trainer ends by broadcasting rank 0's state: record the weights each rank trained to before that
before_broadcast = []
broadcast = distributed.broadcast_state


def recording_broadcast(model):
    with distributed.unwrapped(model):
        before_broadcast.append({{k: p.detach().clone() for k, p in model.named_parameters()}})
    broadcast(model)


distributed.broadcast_state = recording_broadcast
trainer = make_trainer({config!r}, ["train.sync_bn=true"], run_dir={run_dir!r})
init = {{k: v.clone() for k, v in trainer.model.state_dict().items()}}
result = trainer.fit()
assert result["status"] == "done", result
torch.save({{"final": trainer.model.state_dict(), "trained": before_broadcast[-1], "init": init,
            "world": trainer.world, "sync_bn": type(trainer.model.D[2]).__name__}},
           os.path.join({out!r}, f"rank{{trainer.rank}}.pt"))
distributed.shutdown()
"""


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text("model: {type: 'tests.toy_gan:ToyGAN'}\n"
                      "data: {type: 'tests.toy_gan:ToyData', n: 16}\n"
                      "train: {steps: 6, batch_size: 4, ema: {decay: 0.9}}\n"
                      "run: {log_every: 2, sample_every: 3, ckpt_every: 3, progress: false, device: cpu}\n")
    run_dir, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(WORKER.format(root=ROOT, config=str(config), run_dir=str(run_dir),
                                                    out=str(out))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--standalone", str(worker)],
                          capture_output=True, text=True, timeout=180, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["world"] == 2 and ranks[0]["sync_bn"] == "BatchNorm1d"  # SyncBatchNorm needs CUDA
    # gradients were averaged over the ranks at every step: the weights agree before the final broadcast
    trained = [r["trained"] for r in ranks]
    assert set(trained[0]) >= {"G.body.0.weight", "D.1.weight"}
    for key, value in trained[0].items():
        torch.testing.assert_close(value, trained[1][key], rtol=0, atol=1e-6, msg=key)
    for key, value in ranks[0]["final"].items():
        assert torch.equal(value, ranks[1]["final"][key]), key
    assert not torch.equal(ranks[0]["final"]["G.body.0.weight"], ranks[0]["init"]["G.body.0.weight"])
    # rank 0 alone wrote the run directory; its checkpoint keys carry no DDP "module." prefix
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    state = torch.load(run_dir / "checkpoints" / "step_00000006.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert set(state["model"]) == set(ranks[0]["final"])
    assert sorted(f for f in os.listdir(run_dir / "samples") if f.startswith("step_")) == \
        ["step_00000003.png", "step_00000006.png"]
