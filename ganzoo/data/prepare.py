"""Check, build and fetch the datasets ganzoo's loaders read (``ganzoo-prepare DATASET ROOT``).

Each dataset is a table of *parts* (the folders and files its loader reads, each with the official
file count of its split) and of *archives* (the official downloads: URL, size, checksum where the
publisher gives one). A run counts every part of the asked splits; a part short of its count is
filled from its archive (looked for in ``ROOT/downloads/``, ``ROOT/`` and beside ``ROOT``; fetched
into ``ROOT/downloads/`` with ``download=True``) or built (COCO-Stuff instance maps).

Every file is written atomically and extraction skips files already in place, so an interrupted run
continues where it stopped; the manifest ``ROOT/.ganzoo-prepare.json`` records the archives fully
extracted and the parts built, and a complete dataset is only counted, never written to.
"""
import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from typing import Callable, Optional

from ganzoo.data import places365
from ganzoo.fileio import atomic_path, write_json

SPLITS = ("train", "val")
MANIFEST = ".ganzoo-prepare.json"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# official file counts per split (Places365: lines of the Standard lists)
COUNTS = {
    "ade20k": {"train": 20210, "val": 2000},
    "places365": {"train": 1803460, "val": 36500},
    "coco-stuff": {"train": 118287, "val": 5000},
    "cityscapes": {"train": 2975, "val": 500},
}
ALIASES = {"coco_stuff": "coco-stuff", "cocostuff": "coco-stuff", "ade": "ade20k", "places": "places365"}
CITYSCAPES_LOGIN = "https://www.cityscapes-dataset.com/downloads/"


@dataclass(frozen=True)
class Archive:
    """One official download and where its members go under ROOT."""
    name: str
    url: str
    size: str
    target: Callable  # (member name, splits) -> path relative to ROOT, or None to skip the member
    checksum: Optional[tuple] = None  # (hashlib algorithm, hex digest) as published
    login: bool = False  # behind a login: never fetched, the user downloads it in a browser


@dataclass(frozen=True)
class Part:
    """What a loader reads: ``count()`` files must equal ``expected`` (None: the split's count)."""
    split: str
    what: str
    count: Callable
    archive: Optional[str] = None  # the archive that fills it
    build: Optional[Callable] = None  # (root, split, progress, workers) -> None, builds it from ``needs``
    needs: tuple = ()
    expected: Optional[int] = None


# ---------------------------------------------------------------------------- counting helpers

def count_files(directory, suffixes):
    if not os.path.isdir(directory):
        return 0
    return sum(1 for name in os.listdir(directory) if name.lower().endswith(suffixes) and not name.startswith("."))


def count_tree(directory, suffixes):
    """Files ending in ``suffixes`` anywhere under ``directory``."""
    return sum(1 for _, _, names in os.walk(directory) for name in names if name.lower().endswith(suffixes))


def count_lines(path):
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def count_in_cities(directory, suffix):
    """Cityscapes: files ending in ``suffix`` in the ``<city>/`` folders of ``directory``."""
    if not os.path.isdir(directory):
        return 0
    return sum(count_files(os.path.join(directory, city), (suffix.lower(),)) for city in os.listdir(directory)
               if os.path.isdir(os.path.join(directory, city)))


# ---------------------------------------------------------------------------- archive member maps

def strip_first(prefix):
    """Members ``prefix/rest`` -> ``rest`` (ADE20K's zip holds one top folder)."""
    def target(name, splits):
        return name[len(prefix) + 1:] if name.startswith(prefix + "/") else None
    return target


def same_path(allowed):
    """Members kept at their own path when they start with one of ``allowed(splits)``."""
    def target(name, splits):
        return name if name.startswith(tuple(allowed(splits))) else None
    return target


def into(folder_by_top):
    """``top/file`` -> ``folder_by_top[top]/file`` (flattened), for the tops of the asked splits."""
    def target(name, splits):
        top, _, rest = name.partition("/")
        folder = folder_by_top(splits).get(top)
        return f"{folder}/{os.path.basename(rest)}" if folder and rest and "/" not in rest else None
    return target


def cityscapes_gtfine(name, splits):
    ok = name.endswith(("_gtFine_labelIds.png", "_gtFine_instanceIds.png"))
    return name if ok and name.startswith(tuple(f"gtFine/{s}/" for s in splits)) else None


ARCHIVES = {a.name: a for a in [
    Archive("ADEChallengeData2016.zip", "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
            "923 MB", strip_first("ADEChallengeData2016"), ("sha1", "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7")),
    Archive("filelist_places365-standard.tar", places365.DOWNLOAD + "filelist_places365-standard.tar",
            "about 60 MB", same_path(lambda s: ["categories_places365.txt"] + [places365.LISTS[x] for x in s]),
            ("md5", "35a0585fee1fa656440f3ab298f8479c")),
    Archive("train_256_places365standard.tar", places365.DOWNLOAD + "train_256_places365standard.tar", "24 GB",
            same_path(lambda s: ["data_256/"]), ("md5", "53ca1c756c3d1e7809517cc47c5561c5")),
    Archive("val_256.tar", places365.DOWNLOAD + "val_256.tar", "501 MB", same_path(lambda s: ["val_256/"]),
            ("md5", "e27b17d8d44f4af9a78502beb927f808")),
    Archive("train2017.zip", "http://images.cocodataset.org/zips/train2017.zip", "18 GB",
            into(lambda s: {"train2017": "train_img"})),
    Archive("val2017.zip", "http://images.cocodataset.org/zips/val2017.zip", "1 GB",
            into(lambda s: {"val2017": "val_img"})),
    Archive("stuffthingmaps_trainval2017.zip",
            "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip",
            "659 MB", into(lambda s: {f"{x}2017": f"{x}_label" for x in s})),
    Archive("annotations_trainval2017.zip", "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
            "241 MB", same_path(lambda s: [f"annotations/instances_{x}2017.json" for x in s])),
    Archive("gtFine_trainvaltest.zip", CITYSCAPES_LOGIN, "241 MB", cityscapes_gtfine, login=True),
    Archive("leftImg8bit_trainvaltest.zip", CITYSCAPES_LOGIN, "11 GB",
            same_path(lambda s: [f"leftImg8bit/{x}/" for x in s]), login=True),
]}


# ---------------------------------------------------------------------------- parts per dataset

def ade20k_parts(root, split):
    sub = {"train": "training", "val": "validation"}[split]
    images, annotations = os.path.join(root, "images", sub), os.path.join(root, "annotations", sub)
    zip_name = "ADEChallengeData2016.zip"
    return [Part(split, f"images/{sub}/*.jpg", lambda: count_files(images, (".jpg",)), zip_name),
            Part(split, f"annotations/{sub}/*.png", lambda: count_files(annotations, (".png",)), zip_name)]


def places365_parts(root, split):
    list_file = os.path.join(root, places365.LISTS[split])
    if not os.path.isfile(list_file) and os.path.isdir(os.path.join(root, split)):  # easy-format folders
        folder = os.path.join(root, split)
        return [Part(split, f"{split}/<category>/*.jpg (easy format)", lambda: count_tree(folder, IMAGE_EXTENSIONS))]
    dirs = places365.TRAIN_DIRS if split == "train" else places365.VAL_DIRS
    default = "data_256" if split == "train" else "val_256"  # where the official tars put them
    image_dir = next((d for d in dirs if os.path.isdir(os.path.join(root, d))), default)

    def listed_present():
        if not os.path.isfile(list_file):
            return 0
        return sum(os.path.isfile(os.path.join(root, image_dir, path.lstrip("/")))
                   for path, _ in places365.read_list(list_file))
    lists = "filelist_places365-standard.tar"
    images = "train_256_places365standard.tar" if split == "train" else "val_256.tar"
    categories = os.path.join(root, "categories_places365.txt")
    return [Part(split, "categories_places365.txt lines", lambda: count_lines(categories), lists, expected=365),
            Part(split, f"{places365.LISTS[split]} lines", lambda: count_lines(list_file), lists),
            Part(split, f"{image_dir}/ images listed in {places365.LISTS[split]}", listed_present, images)]


def coco_stuff_parts(root, split):
    img, label, inst = (os.path.join(root, f"{split}_{kind}") for kind in ("img", "label", "inst"))
    return [Part(split, f"{split}_img/*.jpg", lambda: count_files(img, (".jpg",)), f"{split}2017.zip"),
            Part(split, f"{split}_label/*.png", lambda: count_files(label, (".png",)),
                 "stuffthingmaps_trainval2017.zip"),
            Part(split, f"{split}_inst/*.png (built from the instance annotations)",
                 lambda: count_files(inst, (".png",)), build=build_coco_instances,
                 needs=("annotations_trainval2017.zip",))]


def cityscapes_parts(root, split):
    images, labels = os.path.join(root, "leftImg8bit", split), os.path.join(root, "gtFine", split)
    return [Part(split, f"leftImg8bit/{split}/<city>/*_leftImg8bit.png",
                 lambda: count_in_cities(images, "_leftImg8bit.png"), "leftImg8bit_trainvaltest.zip"),
            Part(split, f"gtFine/{split}/<city>/*_gtFine_labelIds.png",
                 lambda: count_in_cities(labels, "_gtFine_labelIds.png"), "gtFine_trainvaltest.zip"),
            Part(split, f"gtFine/{split}/<city>/*_gtFine_instanceIds.png",
                 lambda: count_in_cities(labels, "_gtFine_instanceIds.png"), "gtFine_trainvaltest.zip")]


PARTS = {"ade20k": ade20k_parts, "places365": places365_parts, "coco-stuff": coco_stuff_parts,
         "cityscapes": cityscapes_parts}


# ---------------------------------------------------------------------------- COCO-Stuff instance maps

def polygon_pixels(rows, cols, shape):
    """(rr, cc) of the pixels inside or on the boundary of a polygon (vertex rows / cols, float).

    The rule of scikit-image's ``draw.polygon`` (O'Rourke's crossing test on integer pixel
    coordinates: a vertex, a point on an edge or a point with an odd crossing count is in), with the same
    float expressions so that borderline pixels come out the same; clipped to ``shape``.
    """
    import numpy as np

    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    r0, r1 = int(max(0, rows.min())), min(shape[0] - 1, int(math.ceil(rows.max())))
    c0, c1 = int(max(0, cols.min())), min(shape[1] - 1, int(math.ceil(cols.max())))
    if r1 < r0 or c1 < c0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    ys, xs = np.arange(r0, r1 + 1, dtype=np.float64), np.arange(c0, c1 + 1, dtype=np.float64)
    right = np.zeros((len(ys), len(xs)), bool)  # parity of the crossings right / left of each pixel
    left = np.zeros_like(right)
    vertex = np.zeros_like(right)
    eps = 1e-12
    x1, y1 = cols[-1] - xs, rows[-1] - ys
    for xv, yv in zip(cols, rows):
        x0, y0 = xv - xs, yv - ys
        on_row, on_col = np.nonzero((-eps < y0) & (y0 < eps))[0], np.nonzero((-eps < x0) & (x0 < eps))[0]
        if len(on_row) and len(on_col):
            vertex[np.ix_(on_row, on_col)] = True
        for parity, straddles, sign in ((right, (y0 > 0) != (y1 > 0), 1), (left, (y0 < 0) != (y1 < 0), -1)):
            k = np.nonzero(straddles)[0]  # rows whose horizontal line this edge crosses
            if len(k):
                at = (x0[None, :] * y1[k, None] - x1[None, :] * y0[k, None]) / (y1[k] - y0[k])[:, None]
                parity[k] ^= (at > 0) if sign > 0 else (at < 0)
        x1, y1 = x0, y0
    inside = vertex | right | left  # a vertex, inside (odd crossings) or on an edge (parities differ)
    rr, cc = np.nonzero(inside)
    return rr + r0, cc + c0


def coco_instance_map(label, annotations):
    """SPADE's COCO-Stuff instance map: the label map with each polygon annotation painted in turn.

    Annotation k (counting only polygon annotations, in file order) paints its polygons with the value
    k, vertices shifted by -1 pixel as the reference script does; RLE (crowd) annotations are skipped,
    as there. Values are uint8 (k wraps past 255, as in the reference's uint8 image).
    """
    import numpy as np

    inst = np.array(label, dtype=np.uint8, copy=True)
    count = 0
    for ann in annotations:
        segmentation = ann.get("segmentation")
        if not isinstance(segmentation, list):
            continue
        for polygon in segmentation:
            xy = np.asarray(polygon, np.float64).reshape(-1, 2)
            rr, cc = polygon_pixels(xy[:, 1] - 1, xy[:, 0] - 1, inst.shape)
            inst[rr, cc] = count % 256
        count += 1
    return inst


def write_instance_map(job):
    """One instance map: ``job`` = (label map path, output path, the image's annotations)."""
    import numpy as np
    from PIL import Image

    label_path, out, annotations = job
    label = np.asarray(Image.open(label_path))
    if label.ndim != 2:
        raise ValueError(f"{label_path}: a COCO-Stuff label map must be single-channel, got shape {label.shape}")
    inst = coco_instance_map(label, annotations)
    with atomic_path(out, ".png") as tmp:
        Image.fromarray(inst, mode="L").save(tmp)


def build_coco_instances(root, split, progress=True, workers=1):
    """``{split}_inst/<stem>.png`` for every image of ``annotations/instances_{split}2017.json`` whose label
    map is in place (the others stay missing and are counted as such); returns the stems without label.
    Maps already written are kept, so an interrupted build continues; ``workers`` > 1 builds in processes."""
    ann_path = os.path.join(root, "annotations", f"instances_{split}2017.json")
    with open(ann_path) as f:
        data = json.load(f)
    by_image = {}
    for ann in data.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    out_dir = os.path.join(root, f"{split}_inst")
    jobs, no_label = [], []
    for image in data.get("images", []):
        stem = os.path.splitext(image["file_name"])[0]
        out = os.path.join(out_dir, stem + ".png")
        label_path = os.path.join(root, f"{split}_label", stem + ".png")
        if os.path.isfile(out):
            continue
        if not os.path.isfile(label_path):
            no_label.append(stem)
            continue
        jobs.append((label_path, out, by_image.get(image["id"], [])))
    del data, by_image
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            for _ in _bar(pool.imap_unordered(write_instance_map, jobs, chunksize=8), f"{split}_inst", progress,
                          total=len(jobs)):
                pass
    else:
        for job in _bar(jobs, f"{split}_inst", progress):
            write_instance_map(job)
    return no_label


# ---------------------------------------------------------------------------- archives: find, fetch, extract

def _bar(items, desc, progress, total=None):
    from tqdm import tqdm
    return tqdm(items, desc=desc, total=total, unit="file", disable=not progress, leave=False)


def find_archive(root, archive):
    for folder in (os.path.join(root, "downloads"), root, os.path.dirname(os.path.abspath(root))):
        path = os.path.join(folder, archive.name)
        if os.path.isfile(path):
            return path
    return None


def file_digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, archive):
    if archive.checksum is None:
        return
    algorithm, expected = archive.checksum
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise ValueError(f"{path}: {algorithm} {actual} does not match the published {expected} of {archive.name} "
                         f"({archive.url}): delete it and download it again")


def fetch(archive, root, progress=True):
    """Download ``archive`` into ``ROOT/downloads/`` (verified before it gets its name); return its path."""
    from ganzoo.download import DownloadError, download

    dest = os.path.join(root, "downloads", archive.name)
    algorithm, expected = archive.checksum or (None, None)
    if algorithm == "sha256":
        return download(archive.url, dest, sha256=expected, progress=progress, what=archive.name)
    unverified = dest + ".unverified"
    download(archive.url, unverified, progress=progress, what=archive.name)
    try:
        verify(unverified, archive)
    except ValueError:
        os.remove(unverified)
        raise DownloadError(f"{archive.name}: the {algorithm} of the file from {archive.url} does not match the "
                            f"published {expected}; nothing kept") from None
    os.replace(unverified, dest)
    return dest


def archive_members(path):
    """(name, size, open) for every regular file of a zip or tar archive, streamed in archive order."""
    import tarfile
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, lambda info=info: z.open(info)
        return
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            if member.isfile():
                name = member.name[2:] if member.name.startswith("./") else member.name
                yield name, member.size, lambda member=member: tar.extractfile(member)


def extract(archive, path, root, splits, progress=True):
    """Write the members of ``archive`` that the splits need under ``root``; skip those already in place."""
    written = 0
    for name, size, open_member in _bar(archive_members(path), f"extract {archive.name}", progress):
        rel = archive.target(name, splits)
        if rel is None:
            continue
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise ValueError(f"{path}: unsafe member name {name!r}")
        dest = os.path.join(root, rel)
        if os.path.isfile(dest) and os.path.getsize(dest) == size:
            continue
        with open_member() as src, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        written += 1
    return written


# ---------------------------------------------------------------------------- the run

def dataset_name(name):
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in PARTS:
        raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(PARTS)}")
    return key


def check_splits(splits):
    splits = tuple(dict.fromkeys(splits or SPLITS))
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split {bad[0]!r}: use {' and/or '.join(SPLITS)}")
    return splits


def read_manifest(root):
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        return {"extracted": {}, "built": []}
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError):
        raise ValueError(f"{path} is not a ganzoo-prepare manifest: delete it to start over") from None
    manifest.setdefault("extracted", {})
    manifest.setdefault("built", [])
    return manifest


def shortfalls(parts, counts):
    """[(part, found, expected)] of the parts whose file count is not the expected one."""
    short = []
    for part in parts:
        expected = part.expected if part.expected is not None else counts[part.split]
        found = part.count()
        if found != expected:
            short.append((part, found, expected))
    return short


def missing_line(archive, root):
    from ganzoo.download import mirrored

    where = os.path.join(root, "downloads", archive.name)
    if archive.login:
        return (f"missing {archive.name} ({archive.size}): needs a free login at {archive.url}; download it in a "
                f"browser and put it at {where}")
    return f"missing {archive.name} ({archive.size}) from {mirrored(archive.url)}: put it at {where} or use --download"


def prepare(dataset, root, splits=SPLITS, download=False, progress=True, log=print, counts=None, workers=1):
    """Check (and fill) ``root`` for ``dataset``; return 0 when every part has its count, else 1.

    ``workers``: processes for the builds (COCO-Stuff instance maps). ``counts`` replaces the official
    ``{split: count}`` table (tests use small trees).
    """
    dataset = dataset_name(dataset)
    splits = check_splits(splits)
    if os.path.exists(root) and not os.path.isdir(root):
        raise NotADirectoryError(f"dataset root {root} is a file, not a folder")
    counts = counts or COUNTS[dataset]
    parts = [part for split in splits for part in PARTS[dataset](root, split)]
    short = shortfalls(parts, counts)
    if not short:
        log(f"{dataset} at {root}: complete ({summary(parts, counts)}); nothing to do")
        return 0

    manifest = read_manifest(root) if os.path.isdir(root) else {"extracted": {}, "built": []}
    wanted = list(dict.fromkeys([p.archive for p, _, _ in short if p.archive] +
                                [n for p, _, _ in short if p.build for n in p.needs]))
    missing, redone = [], []
    for name in wanted:
        archive = ARCHIVES[name]
        if set(splits) <= set(manifest["extracted"].get(name, [])):
            redone.append(name)
            continue
        path = find_archive(root, archive)
        if path is None and download and not archive.login:
            from ganzoo.download import mirrored
            log(f"fetching {archive.name} ({archive.size}) from {mirrored(archive.url)}")
            path = fetch(archive, root, progress)
        elif path is not None:
            verify(path, archive)
        if path is None:
            missing.append(archive)
            continue
        log(f"extracting {path}")
        extract(archive, path, root, splits, progress)
        done = sorted(set(manifest["extracted"].get(name, [])) | set(splits))
        manifest["extracted"][name] = done
        write_json(os.path.join(root, MANIFEST), manifest)

    missing_names = {a.name for a in missing}
    for part, _, _ in short:
        if part.build and not missing_names & set(part.needs):
            log(f"building {part.what} for {part.split}")
            part.build(root, part.split, progress, workers)
            built = f"{part.split}: {part.what}"
            if built not in manifest["built"]:
                manifest["built"].append(built)
            write_json(os.path.join(root, MANIFEST), manifest)

    for archive in missing:
        log(missing_line(archive, root))
    problems = shortfalls(parts, counts)
    for part, found, expected in problems:
        hint = ""
        if part.archive in redone:
            hint = f" ({part.archive} was extracted before: delete {os.path.join(root, MANIFEST)} to extract again)"
        log(f"{part.split}: {part.what}: {found:,} files, expected {expected:,}{hint}")
    if problems:
        log(f"{dataset} at {root}: incomplete")
        return 1
    log(f"{dataset} at {root}: complete ({summary(parts, counts)})")
    return 0


def summary(parts, counts):
    return ", ".join(f"{split} {counts[split]:,}" for split in dict.fromkeys(p.split for p in parts))

