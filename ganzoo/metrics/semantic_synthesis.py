"""The SPADE paper's Table 1 protocol (FID, mIoU, pixel accuracy) for ADE20K, COCO-Stuff and Cityscapes.

Per dataset (:data:`PROTOCOLS`): the segmenter the paper named (NVlabs/SPADE#39), its own preprocessing
and inference, the mapping of the dataset's label values to the segmenter's classes (255 = ignored),
and the benchmark's mIoU rule. One confusion matrix is summed over the whole split; FID compares the
generated val images with the real val images at the same (generated) size. Choices the papers and
their issue threads disagree on are settings (:data:`EVAL_SIZES`); docs/evaluation.md gives the sources.
"""
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..device import to_device
from ..modes import eval_mode
from .segmentation import ConfusionMatrix

IGNORE = 255
#: "generated": segment at the generated size, ground truth nearest-resized to it (OASIS#5, CC-FPSE#4,
#: CLADE#3); "label": images bilinearly resized to the annotation's original size (OASIS#18: how SPADE's
#: Cityscapes mIoU is reproduced with the released DRN)
EVAL_SIZES = ("generated", "label")


def _read_tsv_mapping(filename):
    from ganzoo.data.palettes import ASSETS
    table = {}
    with open(os.path.join(ASSETS, filename)) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                label_id, train_id, _ = line.rstrip("\n").split("\t")
                table[int(label_id)] = int(train_id)
    return table


def cityscapes_train_ids():
    """``{labelId: trainId}`` of ``ganzoo/assets/cityscapes_train_ids.tsv`` (cityscapesScripts' table)."""
    return _read_tsv_mapping("cityscapes_train_ids.tsv")


def lookup_table(mapping, size=256):
    """A (size,) long tensor: value v -> mapping[v], IGNORE for values the mapping lacks."""
    table = torch.full((size,), IGNORE, dtype=torch.long)
    for value, target in mapping.items():
        if 0 <= value < size:
            table[value] = target
    return table


@dataclass(frozen=True)
class Protocol:
    dataset: str
    segmenter: str
    num_classes: int
    #: dataset label value (as the dataset yields it) -> segmenter class, IGNORE where not scored
    label_to_class: dict
    absent_classes: str           # mIoU rule, see ganzoo.metrics.segmentation.ABSENT_CLASS_RULES
    eval_size: str                # default of the ``eval_size`` setting
    source: str
    segmenter_options: dict = field(default_factory=dict)

    def classes_of(self, label):
        """Dataset label values (any shape, long) -> segmenter classes with IGNORE."""
        table = lookup_table(self.label_to_class, max(256, int(label.max()) + 1)).to(label.device)
        return table[label.clamp(min=0)]


def _protocols():
    return {
        # ADE20K: annotation 0 = other/unlabeled, value k = class k - 1 (CSAIL sceneparsing)
        "ade20k": Protocol("ade20k", "ade20k_resnet101_upernet", 150, {v: v - 1 for v in range(1, 151)},
                           "zero", "generated", "CSAILVision/semantic-segmentation-pytorch (UperNet101)"),
        # COCO-Stuff 164k: values 0..181 are the classes; the dataset yields 255 (unlabeled) as 182
        "coco_stuff": Protocol("coco_stuff", "deeplabv2_cocostuff", 182, {v: v for v in range(182)},
                               "skip", "generated", "kazuto1011/deeplab-pytorch (DeepLabV2 ResNet-101 MSC)"),
        # Cityscapes: labelIds -> 19 trainIds
        "cityscapes": Protocol("cityscapes", "drn_d_105_cityscapes", 19, cityscapes_train_ids(),
                               "skip", "label", "fyu/drn (DRN-D-105)"),
    }


PROTOCOLS = _protocols()


def get_protocol(dataset):
    if dataset not in PROTOCOLS:
        raise ValueError(f"no evaluation protocol for dataset {dataset!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[dataset]


def build_protocol_segmenter(protocol, weights=None, **options):
    from ..registry import BACKBONES
    return BACKBONES.build({"type": protocol.segmenter, "weights": weights,
                            **protocol.segmenter_options, **options})


@torch.no_grad()
def predict(protocol, network, images, out_size, scales=None):
    """0-based class maps (N, h, w) of ``images`` (N, 3, H, W) in [-1, 1] at ``out_size``, by the segmenter's
    official test procedure (ADE20K: CSAIL multi-scale over the short sides ``scales``, default theirs;
    COCO-Stuff: MSC max fusion; Cityscapes: single scale)."""
    if protocol.segmenter.startswith("ade20k_"):
        from ..backbones.segmentation import DEFAULT_SCALES, segment
        return segment(network, images, scales or DEFAULT_SCALES, out_size=out_size)
    return network(images, out_size=out_size).argmax(1)


def read_original(path, kind):
    """The file at its original size: an image as (3, H, W) in [-1, 1], a label map as (H, W) long."""
    from PIL import Image
    img = Image.open(path)
    if kind == "image":
        array = np.asarray(img.convert("RGB"), dtype=np.float32)
        return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1
    return torch.from_numpy(np.asarray(img, dtype=np.int64).copy())


def _label_values_of_file(protocol, label):
    """Values of an original label file -> the values the dataset would yield (COCO-Stuff: 255 -> 182)."""
    if protocol.dataset == "coco_stuff":
        label = torch.where(label == IGNORE, torch.full_like(label, 182), label)
    return label


class SemanticSynthesisEvaluation:
    """FID, mIoU and pixel accuracy of a label-to-image model on a dataset's val split (or, ``real=True``,
    of the real val images: the ceiling of the segmentation scores).

    ``segmenter_weights``: the segmenter's file (``"random"`` for tests); ``fid``: options of
    :class:`ganzoo.metrics.fid.FIDFeatures` (``dims``, ``weights``); ``eval_size``: one of :data:`EVAL_SIZES`
    (default: the protocol's).
    """

    def __init__(self, dataset, segmenter_weights=None, eval_size=None, fid_dims=2048, fid_weights=None,
                 batch_size=8, seed=0, num_workers=0, real=False, progress=True, scales=None):
        self.protocol = get_protocol(dataset)
        if scales is not None and not self.protocol.segmenter.startswith("ade20k_"):
            raise ValueError(f"scales (test short sides) apply to ADE20K's CSAIL networks only; {dataset}'s "
                             f"{self.protocol.segmenter} has its own fixed test procedure")
        self.scales = None if scales is None else tuple(int(v) for v in scales)
        self.eval_size = eval_size or self.protocol.eval_size
        if self.eval_size not in EVAL_SIZES:
            raise ValueError(f"eval_size {self.eval_size!r} is not one of {', '.join(EVAL_SIZES)}")
        self.segmenter_weights = segmenter_weights
        self.fid_dims, self.fid_weights = int(fid_dims), fid_weights
        self.batch_size, self.seed, self.num_workers = int(batch_size), int(seed), int(num_workers)
        self.real = bool(real)
        self.progress = progress

    def _score_batch(self, network, confusion, images, batch, dataset, start):
        p = self.protocol
        if self.eval_size == "generated":
            labels = p.classes_of(batch["label"][:, 0])
            confusion.update(predict(p, network, images, labels.shape[-2:], self.scales), labels)
            return
        labels, inputs = [], []
        for j in range(len(images)):
            image_path, label_path, _ = dataset.items[start + j]
            labels.append(p.classes_of(_label_values_of_file(p, read_original(label_path, "label")).to(images.device)))
            inputs.append(read_original(image_path, "image")[None].to(images.device) if self.real else images[j:j + 1])
        # one forward per run of equal annotation sizes (all of Cityscapes; COCO-Stuff and ADE20K vary)
        j = 0
        while j < len(labels):
            k = j
            while k < len(labels) and labels[k].shape == labels[j].shape:
                k += 1
            size = tuple(labels[j].shape)
            chunk = torch.cat([x if tuple(x.shape[-2:]) == size else
                               F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in inputs[j:k]])
            confusion.update(predict(p, network, chunk, size, self.scales), torch.stack(labels[j:k]))
            j = k

    @torch.no_grad()
    def __call__(self, model, dataset, device="cpu"):
        from tqdm import tqdm
        from ..backbones.weights import NOT_COMPARABLE, warn_if_random
        from .fid import FIDFeatures, statistics
        from .frechet import frechet_distance
        from .images import quantize, sample_images
        device = torch.device(device)
        p = self.protocol
        random_segmenter = warn_if_random(self.segmenter_weights, f"the {p.segmenter} segmenter")
        network = build_protocol_segmenter(p, self.segmenter_weights).to(device).eval()
        confusion = ConfusionMatrix(p.num_classes, device, label_offset=0, absent_classes=p.absent_classes)
        features = None if self.real else FIDFeatures(self.fid_dims, self.fid_weights, device)
        fake_batches, real_batches = [], []
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                                             num_workers=self.num_workers)
        start = 0
        context = eval_mode(model) if model is not None else _nullcontext()
        with context, tqdm(total=len(dataset), unit="img", desc=f"eval {p.dataset}", disable=not self.progress,
                           file=None) as bar:
            for i, batch in enumerate(loader):
                if "label" not in batch:
                    raise ValueError("the evaluation dataset yields no 'label' maps")
                batch = to_device(batch, device)
                real = batch["image"].float()
                images = real if self.real else sample_images(model, batch, device, self.seed + i)
                # as saved PNGs: 8-bit images are what FID and the segmenter see
                images = quantize(images).float() / 127.5 - 1
                self._score_batch(network, confusion, images, batch, dataset, start)
                if features is not None:
                    fake_batches.append(features(quantize(images)))
                    real_batches.append(features(quantize(real)))
                start += len(images)
                bar.update(len(images))
        scores = confusion.scores()
        result = {"dataset": p.dataset, "mode": "real" if self.real else "generated", "num_images": start,
                  "miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"], "fid": None}
        if features is not None:
            fake = statistics([torch.cat(fake_batches)], _Identity(features.dims), check=False)
            real = statistics([torch.cat(real_batches)], _Identity(features.dims), check=False)
            result["fid"] = frechet_distance(*fake, *real, device=device)
            if start < self.fid_dims:
                result["fid_warning"] = (f"{start} images are fewer than the {self.fid_dims} FID dims: "
                                         "the value is not comparable")
            if features.random_weights:
                result["fid_warning"] = NOT_COMPARABLE
        if random_segmenter:
            result["miou_warning"] = NOT_COMPARABLE
        result["iou"] = [None if v != v else v for v in scores["iou"]]   # NaN (absent class) -> JSON null
        result["protocol"] = {
            **network.describe(), "source": p.source, "eval_size": self.eval_size,
            **({"scales": list(self.scales or ())} if p.segmenter.startswith("ade20k_") else {}), "classes": p.num_classes,
            "ignored_label": IGNORE, "absent_classes": p.absent_classes, "labelled_pixels": scores["labelled_pixels"],
            "confusion": "one matrix summed over the whole split",
            "fid": {"dims": self.fid_dims, "weights": None if features is None else features.weights_id,
                    "real": "the val images at the generated size"},
        }
        return result


class _Identity:
    """Stands in for a feature network when the features are already computed."""

    def __init__(self, dims):
        self.dims = dims

    def __call__(self, features):
        return features


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
