"""Image plumbing shared by the metrics: folders of files -> uint8 batches -> [0, 1] on the device."""
import contextlib
import os
import pathlib

import numpy as np
import torch

from ..device import to_device

#: the extensions pytorch-fid picks up (non-recursive, case-sensitive glob, like pytorch-fid)
IMAGE_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")


def list_images(folder, extensions=IMAGE_EXTENSIONS):
    """Sorted image files directly in ``folder``; one-line errors for a missing or empty folder."""
    path = pathlib.Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"image folder {folder} not found")
    files = sorted(f for ext in extensions for f in path.glob(f"*.{ext}"))
    if not files:
        raise ValueError(f"no images ({', '.join(extensions)}) in {folder}")
    return files


def read_image(path):
    """RGB uint8 tensor (3, H, W) read with PIL."""
    from PIL import Image
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1)


class ImageFiles(torch.utils.data.Dataset):
    def __init__(self, files):
        self.files = list(files)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        return read_image(self.files[index])


def stack_or_list(images):
    """Collate: one stacked tensor when all images share a size, else the list (resized on the device)."""
    if all(image.shape == images[0].shape for image in images):
        return torch.stack(images)
    return list(images)


def default_workers(device):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, cpus) if torch.device(device).type == "cuda" else min(2, cpus) - 1


def image_loader(files, batch_size, device, num_workers=None):
    """DataLoader of uint8 batches; decode in workers, pinned memory for CUDA copies."""
    device = torch.device(device)
    workers = default_workers(device) if num_workers is None else num_workers
    return torch.utils.data.DataLoader(
        ImageFiles(files), batch_size=batch_size, shuffle=False, num_workers=workers,
        pin_memory=device.type == "cuda", collate_fn=stack_or_list,
        prefetch_factor=4 if workers > 0 else None)


def to_unit(images, device):
    """uint8 (N, 3, H, W) -> float [0, 1] on ``device`` (the exact op of torchvision's ToTensor)."""
    images = images.to(device, non_blocking=True)
    if images.dtype == torch.uint8:
        return images.float().div(255)
    return images.float()


def quantize(images):
    """[-1, 1] floats -> uint8, as ``torchvision.utils.save_image`` would write them (round half up)."""
    return ((images.detach().float() + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


@contextlib.contextmanager
def strict_fp32(device):
    """Run metric networks in true float32: autocast off (the trainer may be inside bf16/fp16 autocast)
    and TF32 off on CUDA, so values do not depend on the precision settings or the GPU."""
    with torch.autocast(torch.device(device).type, enabled=False):
        if not torch.cuda.is_available():
            yield
            return
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def batches_of(dataset, batch_size, count, num_workers=0):
    """Yield dataset batches (dicts) cycling over ``dataset`` until ``count`` items were yielded."""
    if len(dataset) == 0:
        raise ValueError("the evaluation dataset is empty")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    seen = 0
    while seen < count:
        for batch in loader:
            yield batch
            seen += len(batch["image"])
            if seen >= count:
                return


def sample_images(model, batch, device, seed):
    """Model samples for ``batch`` in [-1, 1], fp32, no grad; the count follows the batch."""
    n = len(batch["image"])
    with torch.no_grad():
        fake = model.sample(batch=to_device(batch, device), n=n, seed=seed)
    return fake.float()
