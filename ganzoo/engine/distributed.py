"""Process group from torchrun's environment, per-network wrapping (DDP, torch.compile) and collectives.

Wrapping replaces a model's network attributes with their wrappers so the model's own code
(``self.G(z)``) runs through DDP unchanged; :func:`unwrapped` puts the plain modules back for
checkpoints, sampling and eval, so state-dict keys never carry ``module.`` or ``_orig_mod.``.
"""
import contextlib
import datetime
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn

from ganzoo.device import pick_device


def init_from_env(device_spec="auto"):
    """Start the process group when launched by torchrun; returns ``(device, rank, world_size)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_spec, local_rank if world > 1 else None, what="run.device")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30),
                                **({"device_id": device} if device.type == "cuda" else {}))
    return device, rank, world


def shutdown():
    if dist.is_initialized():
        dist.destroy_process_group()


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier():
    if is_distributed():
        dist.barrier()


def all_reduce(tensor, op="sum"):
    """In-place all-reduce (``sum``, ``min`` or ``max``); a no-op on one process."""
    if is_distributed():
        dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
                                    "max": dist.ReduceOp.MAX}[op])
    return tensor


def all_gather_object(obj):
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_state(model):
    """Copy rank 0's tensors of ``model.state_dict()`` to every rank (non-network buffers included)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def unwrap(module):
    while True:
        if hasattr(module, "_orig_mod"):
            module = module._orig_mod
        elif isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        else:
            return module


def _parent(model, dotted):
    parent_name, _, attr = dotted.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), attr


def get_network(model, dotted):
    parent, attr = _parent(model, dotted)
    return getattr(parent, attr)


def set_network(model, dotted, module):
    parent, attr = _parent(model, dotted)
    setattr(parent, attr, module)


def network_names(model):
    """Dotted attribute paths of ``model.networks()`` entries (a name may be a path like ``pyramid.3``)."""
    names = []
    for name, net in model.networks().items():
        try:
            found = unwrap(get_network(model, name))
        except AttributeError:
            found = None
        if found is not unwrap(net):
            raise ValueError(f"{type(model).__name__}.networks(): key {name!r} must be the attribute path "
                             "of the network on the model (e.g. 'G' or 'pyramid.3')")
        names.append(name)
    return names


def convert_sync_batch_norms(module):
    """``module`` with every batch norm built as ``sync_batch`` (tagged ``sync_batch = True`` by
    :mod:`ganzoo.layers.norms`) replaced by an ``nn.SyncBatchNorm`` with the same parameters and
    statistics; other batch norms stay per-process."""
    if getattr(module, "sync_batch", False):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batch_norms(child))
    return module


def wrap_networks(model, device, sync_bn=False, use_ddp=False, compile_=False, find_unused=False):
    """Replace each network by its SyncBatchNorm/DDP/compiled version (each network separately; the model's
    ``double_backward_networks`` are not compiled)."""
    if sync_bn and use_ddp and device.type != "cuda":
        warnings.warn("train.sync_bn: SyncBatchNorm needs CUDA; keeping per-process batch norm on " + device.type)
        sync_bn = False
    for name in network_names(model):
        net = unwrap(get_network(model, name))
        if sync_bn and use_ddp:
            net = convert_sync_batch_norms(net)
            set_network(model, name, net)
        wrapped = net
        if use_ddp and any(p.requires_grad for p in net.parameters()):
            wrapped = nn.parallel.DistributedDataParallel(
                net, device_ids=[device] if device.type == "cuda" else None,
                find_unused_parameters=find_unused)
        if compile_ and name not in model.double_backward_networks:
            wrapped = torch.compile(wrapped)
        set_network(model, name, wrapped)


def unwrap_networks(model):
    for name in model.networks():
        set_network(model, name, unwrap(get_network(model, name)))


@contextlib.contextmanager
def unwrapped(model):
    """Plain networks inside the block (state dicts, sampling, eval); wrappers restored afterwards."""
    names = list(model.networks())
    wrappers = {name: get_network(model, name) for name in names}
    unwrap_networks(model)
    try:
        yield model
    finally:
        for name, wrapper in wrappers.items():
            set_network(model, name, wrapper)
