"""Fetch one manifest entry into the torch hub cache: download, convert if needed, verify, then move.

Nothing unverified or partial ever gets the cached name: every byte goes to a temporary file (or folder) in
the cache folder itself, and only a file that passed its check is moved (atomically) onto the final name.
A file whose publisher gives a hash is checked by it; otherwise every tensor name and shape is compared
with the architecture the manifest names.
"""
import importlib
import os
import tempfile
import urllib.parse

from ..download import DownloadError, download


def _resnet18_places365():
    import torchvision
    return torchvision.models.resnet18(weights=None, num_classes=365)


def _vgg16_places365():
    from .vgg16_places365 import _VGG16
    return _VGG16(365)


def _csail(part):
    def build():
        from . import segmentation as seg
        return {"resnet50_dilated": lambda: seg.CSAILResNet((3, 4, 6, 3), dilated=True),
                "ppm_deepsup": lambda: seg.PPMDeepSup(seg.NUM_CLASSES, deep_supervision=True),
                "resnet101": lambda: seg.CSAILResNet((3, 4, 23, 3), dilated=False),
                "upernet": lambda: seg.UPerNet(seg.NUM_CLASSES)}[part]()
    return build


def _deeplabv2_cocostuff():
    from .deeplab import DeepLabV2Segmenter
    return DeepLabV2Segmenter(weights="random")


#: manifest ``verify`` name -> builder of the network a file must fit
ARCHITECTURES = {
    "resnet18_places365": _resnet18_places365,
    "vgg16_places365": _vgg16_places365,
    "csail_resnet50_dilated": _csail("resnet50_dilated"),
    "csail_ppm_deepsup": _csail("ppm_deepsup"),
    "csail_resnet101": _csail("resnet101"),
    "csail_upernet": _csail("upernet"),
    "deeplabv2_cocostuff": _deeplabv2_cocostuff,
}


def _convert_vgg16_places365(files, out):
    from .caffe import convert_vgg16, save_state_dict
    # shapes are checked afterwards, against the whole architecture, like every fetched file
    save_state_dict(convert_vgg16(files["caffemodel"], files["prototxt"], mean=files["mean"], check_shapes=False),
                    out)


#: manifest ``convert`` name -> function(downloaded files by role, output path)
CONVERTERS = {"vgg16_places365": _convert_vgg16_places365}


def _named(table, name):
    if ":" in name:
        module, function = name.split(":", 1)
        return getattr(importlib.import_module(module), function)
    return table[name]


def load_state(path):
    """The plain state dict of a weights file (``meta.*`` entries dropped); ``ValueError`` if it is none."""
    import torch
    from .classifier import load_checkpoint
    state = load_checkpoint(path)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: not a state dict of tensors (entry {bad[0]!r})")
    return {k: v for k, v in state.items() if not k.startswith("meta.")}


def check_architecture(path, builder):
    """``ValueError`` (one line) unless every tensor of ``path`` has the name and shape of ``builder()``'s."""
    import torch
    state = load_state(path)
    # built on the CPU, not the meta device: torch's meta kernels import ~900 modules on first use (slower)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        expected = {k: tuple(v.shape) for k, v in builder().state_dict().items()}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} instead of {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    problems = [f"{label}: {', '.join(keys[:3])}" + (f" ... ({len(keys)} in all)" if len(keys) > 3 else "")
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                if keys]
    if problems:
        raise ValueError("does not fit the network: " + "; ".join(problems))


def verify(entry, path):
    """Check a file without a publisher's hash: by architecture if the entry names one, else that it loads."""
    if entry["verify"]:
        check_architecture(path, _named(ARCHITECTURES, entry["verify"]))
    else:
        load_state(path)


def fetch(entry, dest, progress=True):
    """Download (and convert) ``entry`` to ``dest``, verified; return ``dest``. Raises :class:`DownloadError`."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    if not entry["sources"]:
        check = None if entry["hash_prefix"] else (lambda tmp: verify(entry, tmp))
        return download(entry["url"], dest, hash_prefix=entry["hash_prefix"], check=check, progress=progress,
                        what=entry["file"])
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{os.path.basename(dest)}.") as work:
        files = {}
        for role, url in entry["sources"].items():
            name = os.path.basename(urllib.parse.urlsplit(url).path)
            files[role] = download(url, os.path.join(work, name), progress=progress, what=name)
        out = os.path.join(work, os.path.basename(dest))
        try:
            _named(CONVERTERS, entry["convert"])(files, out)
            verify(entry, out)
        except ValueError as err:
            raise DownloadError(f"{entry['file']}: the files from {', '.join(entry['sources'].values())} "
                                f"did not convert to a verified file: {err}") from None
        os.replace(out, dest)
    return dest
