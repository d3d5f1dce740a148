"""WebDataset tar shards: :func:`write_shards` stores any built dataset losslessly, ``webdataset`` reads it back.

A million small files are slow on a cluster file system (one metadata lookup per image); a few hundred
tar shards of 1000 samples each are not. Each sample is one group of tar members named ``<key>.<ext>``
(the WebDataset layout, so ``webdataset.WebDataset`` and other tools read the shards too):

    png | jpg      the image: the source file's own bytes when they decode to exactly the item's pixels
                   (e.g. Places365's 256x256 JPEGs), else an 8-bit PNG (RGB or gray). The datasets' images
                   are 8-bit files mapped by x / 127.5 - 1, so (x + 1) * 127.5 rounds back to them exactly
    label.png      label map, 8- or 16-bit PNG by its range (label.npy past 16 bits or below 0)
    instance.png   instance map, the same way
    cls            the class index as text
    json           {"path": source file}

``OUT/index.json`` holds ``count``, ``shards``, ``keys`` (the member extensions), ``facts`` (the source
dataset's label_nc, num_classes, use_instance, classes ... that models check in ``prepare``), the source's
``flip`` setting, which the reader applies at read time, and ``table``: ``<prefix>-offsets.npz``, every
member's shard, offset and size, so a reader of a million samples need not scan every tar header.

Reading is map-style on purpose: ``dataset[i]`` seeks to its members' offsets (the saved table, else read
once from the tar headers). So the one trainer's sampler works unchanged: shuffling is global and
exact, DistributedSampler splits by index, and resume restarts at the exact sample, none of which a
streaming IterableDataset with a shuffle buffer gives. WebDataset itself is needed only for writing.
"""
import io
import json
import os
import re
import tarfile

import numpy as np
import torch
from torch.utils.data import Dataset

from ganzoo.config import check_keys
from ganzoo.fileio import atomic_path, write_json
from ganzoo.registry import DATASETS

INDEX = "index.json"
MAP_KEYS = ("label", "instance")
#: dataset attributes that models check in ``prepare``: carried from the source to the shard dataset
FACTS = ("label_nc", "contain_dontcare_label", "num_classes", "use_instance", "classes")
#: source files stored as they are when they decode to the item's pixels (extension -> member extension)
SOURCE_FORMATS = {"jpg": "jpg", "jpeg": "jpg", "png": "png"}
IMAGE_EXTS = ("png", "jpg")


# ------------------------------------------------------------------ writing

def image_member(image, path, where):
    """Float (C, H, W) in [-1, 1] on the uint8 grid -> (extension, bytes): the source file's own bytes when it
    decodes to exactly these pixels (an unresized JPEG stays a small JPEG), else an 8-bit PNG. An image off
    the grid is an error (storing it would not be lossless)."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"{where}: image must be (1 or 3, H, W), got shape {tuple(image.shape)}")
    scaled = (image.detach().float().cpu() + 1) * 127.5
    levels = scaled.round()
    if (scaled - levels).abs().max() > 1e-3 or levels.min() < 0 or levels.max() > 255:
        raise ValueError(f"{where}: image values are not x / 127.5 - 1 of 8-bit values, so 8-bit PNG shards would "
                         "not be lossless (was the image resized or augmented after normalising?)")
    array = levels.to(torch.uint8).permute(1, 2, 0).numpy()
    array = array[..., 0] if array.shape[2] == 1 else array
    source = source_file(path, array)
    return source if source else ("png", encode_png(array))


def source_file(path, pixels):
    """``(ext, bytes)`` of the JPEG / PNG at ``path`` when it decodes (RGB or gray, as read back) to ``pixels``."""
    ext = os.path.splitext(str(path or ""))[1].lower().lstrip(".")
    if ext not in SOURCE_FORMATS or not os.path.isfile(path):
        return None
    from PIL import Image
    with open(path, "rb") as f:
        data = f.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode != ("L" if pixels.ndim == 2 else "RGB"):
                return None
            decoded = np.asarray(image)
    except (OSError, SyntaxError, ValueError):
        return None
    return (SOURCE_FORMATS[ext], data) if np.array_equal(decoded, pixels) else None


def encode_png(array):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def map_to_member(tensor, where):
    """Integer (1, H, W) map -> (extension, bytes): 8-bit PNG, 16-bit PNG, or .npy for other ranges."""
    array = tensor.detach().cpu().numpy()
    if array.ndim != 3 or array.shape[0] != 1:
        raise ValueError(f"{where}: expected a (1, H, W) map, got shape {array.shape}")
    array = array[0]
    low, high = int(array.min()), int(array.max())
    if low >= 0 and high < 256:
        return "png", encode_png(array.astype(np.uint8))
    if low >= 0 and high < 65536:
        return "png", encode_png(array.astype(np.uint16))
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.int64))
    return "npy", buffer.getvalue()


def sample_members(item, index):
    """One dataset item -> the WebDataset sample dict (``__key__`` and one bytes value per member)."""
    where = f"item {index}"
    unknown = sorted(set(item) - {"image", "class", "path", *MAP_KEYS})
    if unknown:
        raise ValueError(f"{where}: cannot store item key(s) {', '.join(unknown)} in shards "
                         "(known: image, label, instance, class, path)")
    if "image" not in item:
        raise ValueError(f"{where} has no 'image'")
    ext, data = image_member(item["image"], item.get("path"), where)
    sample = {"__key__": f"{index:09d}", ext: data}
    for name in MAP_KEYS:
        if name in item:
            ext, data = map_to_member(item[name], f"{where} {name}")
            sample[f"{name}.{ext}"] = data
    if "class" in item:
        sample["cls"] = str(int(item["class"])).encode()
    if "path" in item:
        sample["json"] = json.dumps({"path": str(item["path"])}).encode()
    return sample


def dataset_facts(dataset):
    facts = {}
    for name in FACTS:
        value = getattr(dataset, name, None)
        if value is not None:
            facts[name] = list(value) if name == "classes" else value
    return facts


def write_shards(dataset, out_dir, per_shard=1000, prefix="shard", flip=False, items=None, progress=None):
    """Write every item of ``dataset`` to ``out_dir/<prefix>-NNNNNN.tar`` (``per_shard`` samples each) and
    ``out_dir/index.json``; returns the index dict.

    Shards are written under a temporary folder in ``out_dir`` and moved in place when all are done;
    ``index.json`` comes last (an old one is removed first), so a reader never sees half a set. ``items`` iterates the items instead of
    ``dataset[i]`` (e.g. a DataLoader with workers); ``progress`` wraps that iterable (e.g. tqdm).
    ``flip`` is recorded as the read-time default (turn random augmentation off in the source).
    """
    import webdataset
    per_shard = int(per_shard)
    if per_shard < 1:
        raise ValueError(f"per_shard must be >= 1, got {per_shard}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
        raise ValueError(f"shard prefix {prefix!r} must be letters, digits, '_', '-' or '.'")
    count = len(dataset)
    if count == 0:
        raise ValueError("the dataset is empty: nothing to shard")
    os.makedirs(out_dir, exist_ok=True)
    tmp_dir = os.path.join(out_dir, f".writing{os.getpid()}")
    os.makedirs(tmp_dir, exist_ok=True)
    keys, written = set(), 0
    try:
        pattern = os.path.join(tmp_dir, f"{prefix}-%06d.tar")
        source = items if items is not None else (dataset[i] for i in range(count))
        if progress is not None:
            source = progress(source)
        with webdataset.ShardWriter(pattern, maxcount=per_shard, verbose=0) as sink:
            for item in source:
                sample = sample_members(item, written)
                keys.update(k for k in sample if k != "__key__")
                sink.write(sample)
                written += 1
        if written != count:
            raise ValueError(f"the dataset gave {written} items but its length is {count}")
        shards = sorted(name for name in os.listdir(tmp_dir) if name.endswith(".tar"))
        if os.path.exists(os.path.join(out_dir, INDEX)):  # a set being replaced: unreadable until the new index
            os.remove(os.path.join(out_dir, INDEX))
        for name in shards:
            os.replace(os.path.join(tmp_dir, name), os.path.join(out_dir, name))
    finally:
        for name in os.listdir(tmp_dir):
            os.remove(os.path.join(tmp_dir, name))
        os.rmdir(tmp_dir)
    table = f"{prefix}-offsets.npz"  # member offsets: a reader need not scan every tar header
    with atomic_path(os.path.join(out_dir, table), suffix=".npz") as tmp:
        np.savez_compressed(tmp, **member_table([os.path.join(out_dir, name) for name in shards]))
    index = {"count": written, "shards": shards, "keys": sorted(keys), "per_shard": per_shard,
             "flip": bool(flip), "facts": dataset_facts(dataset), "table": table,
             "shard_bytes": [os.path.getsize(os.path.join(out_dir, name)) for name in shards]}
    write_json(os.path.join(out_dir, INDEX), index)
    stale = re.compile(re.escape(prefix) + r"-\d{6}\.tar")  # a previous, longer set of this prefix
    for name in os.listdir(out_dir):
        if stale.fullmatch(name) and name not in shards:
            os.remove(os.path.join(out_dir, name))
    return index


# ------------------------------------------------------------------ reading

def expand_braces(pattern):
    """``a-{000..002}.tar`` -> ``a-000.tar a-001.tar a-002.tar`` (numeric ranges keep their width) and
    ``{x,y}`` lists; several groups multiply."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    body = match.group(1)
    ranged = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if ranged:
        first, last = ranged.groups()
        options = [str(i).zfill(len(first)) for i in range(int(first), int(last) + 1)]
    else:
        options = body.split(",")
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [head + option + rest for option in options for rest in expand_braces(tail)]


def resolve_shards(path):
    """``(shard paths, index dict or None)`` for a folder with index.json, a tar file or a brace pattern."""
    if not path:
        raise ValueError("data.path is required for the webdataset dataset: the shard folder (with index.json) "
                         "or a pattern such as shards/shard-{000000..000009}.tar")
    if os.path.isdir(path):
        index_path = os.path.join(path, INDEX)
        if not os.path.isfile(index_path):
            raise FileNotFoundError(f"data.path {path} has no {INDEX}: write shards with ganzoo-shards, "
                                    "or give a tar pattern such as shard-{000000..000009}.tar")
        with open(index_path) as f:
            index = json.load(f)
        return [os.path.join(path, name) for name in index["shards"]], index
    paths = expand_braces(path)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"data.path: shard {missing[0]} not found"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return paths, None


def index_tar(path):
    """``[(key, ext, offset, size)]`` of the regular members of one tar, in file order."""
    members = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.isfile():
                    base = os.path.basename(member.name)
                    key, dot, ext = base.partition(".")
                    if dot:
                        members.append((os.path.dirname(member.name) + "/" + key, ext, member.offset_data,
                                        member.size))
    except tarfile.TarError as err:
        raise ValueError(f"{path}: not a readable (uncompressed) tar shard: {err}") from None
    return members


def decode_image(data):
    from PIL import Image
    array = np.asarray(Image.open(io.BytesIO(data)))
    tensor = torch.from_numpy(array.copy())
    tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return tensor.float() / 127.5 - 1.0  # the source datasets' own map: the same floats come back


def decode_map(ext, data):
    if ext == "npy":
        array = np.load(io.BytesIO(data))
    else:
        from PIL import Image
        array = np.asarray(Image.open(io.BytesIO(data)))
    return torch.from_numpy(array.astype(np.int64)).unsqueeze(0)


def member_table(paths):
    """Per member extension, an int64 array (samples, 3) of shard number, data offset and size (-1: absent),
    one row per sample in shard order, from the tar headers."""
    samples, order = {}, []
    for shard, path in enumerate(paths):
        for key, ext, offset, size in index_tar(path):
            if (shard, key) not in samples:
                samples[(shard, key)] = {}
                order.append((shard, key))
            samples[(shard, key)][ext] = (shard, offset, size)
    columns = {}
    for ext in sorted({ext for members in samples.values() for ext in members}):
        table = np.full((len(order), 3), -1, dtype=np.int64)
        for row, name in enumerate(order):
            if ext in samples[name]:
                table[row] = samples[name][ext]
        columns[ext] = table
    return columns


def load_table(out_dir, index, paths):
    """The member table saved beside index.json by :func:`write_shards`; None when absent or when a shard's
    size differs from the one recorded (rewritten shards are scanned again)."""
    path = os.path.join(out_dir, index.get("table") or "")
    if not index.get("table") or not os.path.isfile(path):
        return None
    if index.get("shard_bytes") != [os.path.getsize(p) for p in paths]:
        return None
    with np.load(path) as saved:
        columns = {ext: saved[ext] for ext in saved.files}
    if sorted(columns) != sorted(index.get("keys", [])) or any(len(t) != index["count"] for t in columns.values()):
        return None
    return columns


@DATASETS.register("webdataset")
class ShardDataset(Dataset):
    """Samples from tar shards written by ``ganzoo-shards`` (or any WebDataset shards with png/jpg images).

    ``path``: the shard folder (with index.json) or a tar path / brace pattern; ``flip``: random horizontal
    flip of image, label and instance together at read time (null = the source config's flip, recorded in
    index.json). Shuffling is the trainer's sampler's (global, exact on resume), so there is no buffer.
    """
    DEFAULTS = {"path": None, "flip": None}

    def __init__(self, **cfg):
        cfg = check_keys(cfg, self.DEFAULTS, "data")
        self.shards, index = resolve_shards(cfg["path"])
        index = index or {}
        self.flip = bool(index.get("flip", False) if cfg["flip"] is None else cfg["flip"])
        for name, value in index.get("facts", {}).items():
            if name in FACTS:
                setattr(self, name, value)
        table = load_table(cfg["path"], index, self.shards) if index else None
        self.columns = table if table is not None else member_table(self.shards)
        if not any(ext in self.columns for ext in IMAGE_EXTS):
            raise ValueError(f"data.path {cfg['path']}: the shards have no png/jpg image members")
        if index and index.get("count") != len(self):
            raise ValueError(f"data.path {cfg['path']}: index.json says {index.get('count')} samples but the "
                             f"shards hold {len(self)} (shards changed after writing?)")
        self._files = {}

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def _read(self, ext, i):
        shard, offset, size = (int(v) for v in self.columns[ext][i])
        if size < 0:
            return None
        key = (os.getpid(), shard)  # a file handle per process: loader workers never share one
        handle = self._files.get(key)
        if handle is None:
            handle = self._files[key] = open(self.shards[shard], "rb")
        handle.seek(offset)
        return handle.read(size)

    def __getstate__(self):
        return {**self.__dict__, "_files": {}}

    def __getitem__(self, i):
        data = next((d for ext in IMAGE_EXTS if ext in self.columns and (d := self._read(ext, i)) is not None), None)
        if data is None:
            raise ValueError(f"sample {i} in shards {self.shards[0]}... has no image")
        item = {"image": decode_image(data)}
        for name in MAP_KEYS:
            for ext in ("png", "npy"):
                member = f"{name}.{ext}"
                if member in self.columns and (data := self._read(member, i)) is not None:
                    item[name] = decode_map(ext, data)
        if "cls" in self.columns and (data := self._read("cls", i)) is not None:
            item["class"] = torch.tensor(int(data.decode()), dtype=torch.long)
        if "json" in self.columns and (data := self._read("json", i)) is not None:
            path = json.loads(data.decode()).get("path")
            if path is not None:
                item["path"] = path
        if self.flip and torch.rand(()) < 0.5:
            item = {k: v.flip(-1) if torch.is_tensor(v) and v.dim() == 3 else v for k, v in item.items()}
        return item
