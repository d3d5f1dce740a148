"""Where tensors go: the one way to turn a device name into a ``torch.device`` and to move a batch there."""
import torch


def pick_device(spec="auto", local_rank=None, what="--device"):
    """``torch.device`` for ``spec`` (``auto``/None = CUDA when available, else CPU; ``cpu``, ``cuda``,
    ``cuda:1`` ...). A name torch does not know, or CUDA where there is none, is a one-line ValueError
    naming ``what`` (the flag or config key the name came from). ``local_rank`` picks the GPU of a
    torchrun process."""
    if spec in (None, "auto"):
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ValueError(f"{what} {spec!r} is not a device (use auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {spec!r}: CUDA is not available here; use cpu")
        if local_rank is not None:
            device = torch.device("cuda", local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def to_device(batch, device, channels_last=False):
    """The tensors of a batch dict on ``device`` (other values as they are); with ``channels_last`` the
    4-d float tensors (images) are in channels_last memory format. Anything but a dict is returned as is."""
    if not isinstance(batch, dict):
        return batch
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4 and value.is_floating_point():
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out
