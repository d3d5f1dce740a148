"""Where a sweep's settings run: local processes, torchrun ranks or SLURM jobs (submitit). Each returns
``{name: return code}`` for the settings it ran; every run goes through :func:`ganzoo.sweep.runs.run_one`, so
skipping and resuming are the same everywhere."""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ganzoo.config import ConfigError
from ganzoo.fileio import write_json
from ganzoo.sweep.runs import run_one


def cores_per_run(runs_at_once, threads=None):
    """Threads per run: given, or the machine's cores shared evenly (never oversubscribed)."""
    return threads or max(1, (os.cpu_count() or 1) // runs_at_once)


def run_local(config, settings, out, workers=1, threads=None):
    threads = cores_per_run(workers, threads)
    with ThreadPoolExecutor(workers) as pool:
        codes = pool.map(lambda item: run_one(config, item[1], os.path.join(out, item[0]), threads),
                         settings.items())
        return dict(zip(settings, codes))


def rank_share(settings, rank, world):
    """Rank ``rank``'s settings: every ``world``-th, so ranks get equal counts when runs cost alike."""
    return dict(list(settings.items())[rank::world])


def run_torchrun(config, settings, out, threads=None, poll_seconds=2.0):
    """This process is one rank of ``torchrun --nproc-per-node N -m ganzoo.cli.sweep …``: it runs its share
    one after the other (on GPU ``LOCAL_RANK``'s device when there are GPUs). Rank 0 then waits for every rank's
    marker file and returns all codes; other ranks return their own."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    threads = cores_per_run(local_world, threads)
    gpu = _rank_gpu(local_rank)
    share = rank_share(settings, rank, world)
    codes = {name: run_one(config, overrides, os.path.join(out, name), threads, gpu)
             for name, overrides in share.items()}
    markers = os.path.join(out, "_ranks")
    os.makedirs(markers, exist_ok=True)
    write_json(os.path.join(markers, f"rank{rank}_of{world}.json"), codes)
    if rank != 0:
        return codes
    paths = [os.path.join(markers, f"rank{r}_of{world}.json") for r in range(world)]
    while not all(os.path.isfile(p) for p in paths):
        time.sleep(poll_seconds)
    for path in paths:
        with open(path) as f:
            codes.update(json.load(f))
        os.remove(path)
    return codes


def _rank_gpu(local_rank):
    """The GPU a rank's runs see (``CUDA_VISIBLE_DEVICES`` for the child), or None on a machine without."""
    import torch
    if not torch.cuda.is_available():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    return ids[local_rank % len(ids)]


def run_submitit(config, settings, out, slurm, threads=None):
    """One submitit job per setting (``slurm``: ``cluster`` — ``slurm``, ``local`` or ``debug``, default: SLURM
    when available, else local — and submitit's parameters, e.g. ``timeout_min``, ``slurm_partition``, ``gpus_per_node``,
    ``cpus_per_task``); waits for all of them. Logs go to ``OUT/_submitit``."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("executor submitit needs the submitit package: pip install 'ganzoo[slurm]'") from None
    params = dict(slurm)
    cluster = params.pop("cluster", None)
    params.setdefault("name", "ganzoo-sweep")
    try:
        executor = submitit.AutoExecutor(folder=os.path.join(out, "_submitit", "%j"), cluster=cluster)
        executor.update_parameters(**params)
    except (TypeError, ValueError, NameError) as err:  # an unknown cluster or parameter
        raise ConfigError(f"slurm: {str(err).splitlines()[0]}") from None
    threads = threads or int(params.get("cpus_per_task", 0)) or 1
    jobs = {name: executor.submit(run_one, config, overrides, os.path.join(out, name), threads)
            for name, overrides in settings.items()}
    codes = {}
    for name, job in jobs.items():
        try:
            codes[name] = job.result()
        except (submitit.core.utils.FailedJobError, submitit.core.utils.UncompletedJobError) as err:
            # failed outside run_one (killed, pre-empted, out of time): named in the summary, the rest go on
            print(f"{name}: job {job.job_id} failed: {(str(err).splitlines() or [type(err).__name__])[0]}")
            codes[name] = 1
    return codes
