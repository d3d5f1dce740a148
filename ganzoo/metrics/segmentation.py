"""Pixel accuracy and mIoU of semantic segmentations, and the SPADE "segment the fakes" evaluation.

Label maps follow the ADE20K annotation convention: 0 = unlabeled ("other objects"), class k
(0-based network output) = value k + 1, so values are 0..150. The rules are the reference's
(CSAIL ``intersectionAndUnion`` / ``accuracy``, sceneparsing ``utils_eval.py``):

* pixels whose label is 0 are ignored, in both the accuracy and the IoU (the prediction there is
  not counted in any class's area);
* pixel accuracy = correct labelled pixels / labelled pixels, over the whole set;
* per class, intersection and union are summed over the whole set first, IoU = I / (U + 1e-10),
  and mIoU is the plain mean over all 150 classes — a class absent from both prediction and labels
  counts as 0 (this matters on small subsets).
"""
import os

import numpy as np
import torch

from ..device import to_device
from ..modes import eval_mode
from ..registry import METRICS

NUM_CLASSES = 150
LABEL_EXTENSIONS = (".png",)


class ConfusionMatrix:
    """Streaming (label class, predicted class) counts over labelled pixels, kept on the device.

    A prediction outside 0..C-1 (e.g. "unlabeled") goes to an extra last column: it is wrong and
    counts in its label's area, but in no predicted class's area.
    """

    def __init__(self, num_classes=NUM_CLASSES, device=None, label_offset=1, absent_classes="zero"):
        if absent_classes not in ABSENT_CLASS_RULES:
            raise ValueError(f"absent_classes {absent_classes!r} is not one of {', '.join(ABSENT_CLASS_RULES)}")
        self.num_classes = num_classes
        #: label value of class 0: 1 in the ADE20K convention (0 = unlabeled); 0 for train ids (255 = ignore)
        self.label_offset = int(label_offset)
        self.absent_classes = absent_classes
        self.counts = torch.zeros(num_classes * (num_classes + 1), dtype=torch.int64, device=device)

    def update(self, pred, label):
        """``pred``: 0-based classes (any shape, long); ``label``: annotation values, same shape; class k is
        label value ``k + label_offset``, any value outside the C classes is ignored."""
        if pred.shape != label.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and label {tuple(label.shape)} differ in size; "
                             "resize the label map with nearest neighbour first")
        c = self.num_classes
        pred = pred.reshape(-1).to(self.counts.device, torch.int64)
        label = label.reshape(-1).to(self.counts.device, torch.int64)
        label = label - self.label_offset
        valid = (label >= 0) & (label < c)
        pred = pred[valid]
        pred = torch.where((pred >= 0) & (pred < c), pred, torch.full_like(pred, c))
        self.counts += torch.bincount(label[valid] * (c + 1) + pred, minlength=c * (c + 1))
        return self

    @property
    def matrix(self):
        """(C, C+1) int64: rows = label class, columns = predicted class (0-based), last = no class."""
        return self.counts.view(self.num_classes, self.num_classes + 1)

    def scores(self):
        return scores_from_confusion(self.matrix, self.absent_classes)


#: how a class absent from both labels and predictions enters the mIoU: "zero" counts it as IoU 0 (CSAIL
#: ADE20K); "skip" leaves it out of the mean (np.nanmean: fyu/drn, kazuto1011/deeplab-pytorch)
ABSENT_CLASS_RULES = ("zero", "skip")


def scores_from_confusion(matrix, absent_classes="zero"):
    """``{"pixel_accuracy", "miou", "iou" (per class), "labelled_pixels"}`` from a (C, C) or (C, C+1) matrix.

    ``absent_classes``: see :data:`ABSENT_CLASS_RULES` (with "skip", an absent class's IoU is NaN)."""
    matrix = torch.as_tensor(matrix).to(torch.float64)
    c = matrix.shape[0]
    intersection = matrix[:, :c].diagonal()
    union = matrix[:, :c].sum(0) + matrix.sum(1) - intersection
    iou = intersection / (union + 1e-10)
    if absent_classes == "skip":
        iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.full_like(iou, float("nan")))
        present = iou[union > 0]
        miou = float(present.mean()) if present.numel() else 0.0
    else:
        miou = float(iou.mean())
    labelled = matrix.sum()
    return {
        "pixel_accuracy": float(intersection.sum() / labelled) if labelled > 0 else 0.0,
        "miou": miou,
        "iou": [float(v) for v in iou],
        "labelled_pixels": int(labelled),
    }


def read_label_map(path, num_classes=NUM_CLASSES):
    """A label PNG in the ADE20K convention as a uint8/int array (H, W); one-line errors on bad files."""
    from PIL import Image, UnidentifiedImageError
    try:
        img = Image.open(path)
        img.load()
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: cannot read label map ({err})") from None
    if img.mode not in ("L", "P", "I", "I;16"):
        raise ValueError(f"{path}: label map must be a single-channel PNG of class indices (mode L/P/I), "
                         f"got mode {img.mode}; colour previews are not label maps")
    label = np.asarray(img, dtype=np.int64)
    if label.size and (label.max() > num_classes or label.min() < 0):
        bad = int(label.max()) if label.max() > num_classes else int(label.min())
        raise ValueError(f"{path}: label value {bad} is outside 0..{num_classes} "
                         f"(ADE20K convention: 0 = unlabeled, class k = k+1)")
    return label


def resize_label_nearest(label, size):
    """Resize an integer label map (H, W) to ``size`` = (h, w) with nearest neighbour (never bicubic)."""
    from PIL import Image
    if tuple(label.shape) == tuple(size):
        return label
    img = Image.fromarray(np.asarray(label, dtype=np.int32), mode="I")
    return np.asarray(img.resize((size[1], size[0]), Image.NEAREST), dtype=np.int64)


def score_label_folders(pred_dir, label_dir, num_classes=NUM_CLASSES, resize_labels=True):
    """Score predicted label PNGs against ground-truth PNGs paired by file stem (both ADE20K convention).

    A ground-truth map of another size than its prediction is resized with nearest neighbour when
    ``resize_labels`` (the count is reported as ``resized_labels``), else it is an error.
    """
    def listing(directory, what):
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{what} directory {directory} not found")
        files = {os.path.splitext(n)[0]: os.path.join(directory, n) for n in sorted(os.listdir(directory))
                 if os.path.splitext(n)[1].lower() in LABEL_EXTENSIONS}
        if not files:
            raise FileNotFoundError(f"{what} directory {directory} has no .png label maps")
        return files

    preds, labels = listing(pred_dir, "prediction"), listing(label_dir, "label")
    missing = sorted(set(preds) - set(labels))
    if missing:
        raise ValueError(f"no ground-truth label in {label_dir} for {len(missing)} prediction(s): "
                         + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    confusion = ConfusionMatrix(num_classes)
    resized = 0
    for stem in sorted(preds):
        pred = read_label_map(preds[stem], num_classes)
        label = read_label_map(labels[stem], num_classes)
        if label.shape != pred.shape:
            if not resize_labels:
                raise ValueError(f"{labels[stem]}: size {label.shape[::-1]} differs from prediction "
                                 f"{preds[stem]} {pred.shape[::-1]} (w, h)")
            label = resize_label_nearest(label, pred.shape)
            resized += 1
        # predictions store class k as k+1; an unlabeled (0) prediction never matches a labelled pixel
        # stored value k+1 = class k; a stored 0 becomes -1, which no label matches
        confusion.update(torch.from_numpy(pred - 1), torch.from_numpy(label))
    result = confusion.scores()
    result.update({"num_images": len(preds), "resized_labels": resized})
    return result


@METRICS.register("segmentation")
class SegmentationScore:
    """mIoU and pixel accuracy of generated images vs the label maps they were generated from.

    SPADE's protocol: for each batch of the dataset (its label maps, ADE20K convention 0..150), the
    model generates with ``model.sample(batch=batch, seed=seed + i)``, a CSAIL ADE20K network segments
    the fakes (multi-scale, probabilities upsampled to the label size), and the confusion matrix is
    accumulated over the whole set. Returns ``{"miou", "pixel_accuracy", "protocol": {...}}`` (fractions
    in [0, 1]; the protocol names network, weights files, input format, scales, label sizes, N).

    The segmentation network is built on first use, so building this metric needs no weights.
    """

    def __init__(self, network="ade20k_resnet101_upernet", weights=None, epoch=None, input_format="torch_rgb",
                 scales=(300, 375, 450, 525, 600), max_size=1000, num_samples=None, batch_size=8, seed=0,
                 num_workers=0):
        from ..backbones.segmentation import ARCHITECTURES, INPUT_FORMATS
        if network not in ARCHITECTURES:
            raise ValueError(f"segmentation network {network!r} is not one of {', '.join(ARCHITECTURES)}")
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
        self.options = {"network": network, "weights": weights, "epoch": epoch, "input_format": input_format}
        self.scales = tuple(int(s) for s in (scales if isinstance(scales, (list, tuple)) else [scales]))
        self.max_size = int(max_size)
        self.num_samples = num_samples
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self._network = None

    def network(self, device):
        if self._network is None:
            from ..backbones.segmentation import build_segmenter
            opts = self.options
            self._network = build_segmenter(opts["network"], weights=opts["weights"], epoch=opts["epoch"],
                                            input_format=opts["input_format"])
        return self._network.to(device).eval()

    @torch.no_grad()
    def __call__(self, model, dataset, device="cpu"):
        from torch.utils.data import DataLoader, Subset
        from ..backbones.segmentation import segment
        device = torch.device(device)
        network = self.network(device)
        count = len(dataset) if not self.num_samples else min(int(self.num_samples), len(dataset))
        loader = DataLoader(Subset(dataset, range(count)), batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers)
        confusion = ConfusionMatrix(network.num_classes, device)
        label_sizes = set()
        with eval_mode(model):
            for i, batch in enumerate(loader):
                if "label" not in batch:
                    raise ValueError("segmentation metric needs a dataset with label maps ('label' in the batch)")
                batch = to_device(batch, device)
                label = batch["label"][:, 0]
                if int(label.max()) > network.num_classes or int(label.min()) < 0:
                    raise ValueError(f"label values must be 0..{network.num_classes} (ADE20K convention, "
                                     f"0 = unlabeled); got {int(label.min())}..{int(label.max())}")
                fake = model.sample(batch=batch, seed=self.seed + i).float()
                pred = segment(network, fake, self.scales, self.max_size, out_size=label.shape[-2:])
                confusion.update(pred, label)
                label_sizes.add(tuple(label.shape[-2:]))
        scores = confusion.scores()
        result = {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"]}
        result["protocol"] = {
            **network.describe(), "scales": list(self.scales), "max_size": self.max_size,
            "label_sizes": sorted(label_sizes), "num_images": count, "seed": self.seed,
            "ignored_label": 0, "classes": network.num_classes,
            "labelled_pixels": scores["labelled_pixels"],
            "rules": "I/U summed over the set, mIoU = mean over all classes, accuracy over labelled pixels",
        }
        return result


