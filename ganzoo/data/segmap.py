"""Label-map helpers shared by the semantic-synthesis datasets and models.

CPU side (datasets): reading label / instance maps, the SPADE preprocessing modes with one geometry
(resize, crop, flip) drawn once per sample and applied to the image, the label map and the instance
map alike (labels and instances resized with nearest neighbour), and the label range check that
turns a bad label value into a one-line error naming the file before it can become a CUDA assert.
Only the small integer maps travel from the loader to the device; the models encode them there
(:mod:`ganzoo.layers.onehot`).
"""
import numpy as np
import torch
from PIL import Image

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "scale_shortside",
                    "scale_shortside_and_crop", "fixed", "none")
DONTCARE_VALUE = 255  # stored value of unlabeled pixels; mapped to index label_nc


def check_mode(mode, where="data.preprocess_mode"):
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"{where}: unknown preprocess mode {mode!r}; valid: {', '.join(PREPROCESS_MODES)}")


def resized_size(size, mode, load_size, crop_size, aspect_ratio=1.0):
    """(w, h) after the resize part of ``mode`` for an input of ``size`` = (w, h)."""
    w, h = size
    if mode == "resize_and_crop":
        return load_size, load_size
    if mode.startswith("scale_width"):
        return load_size, int(load_size * h / w)
    if mode.startswith("scale_shortside"):
        short, long = min(w, h), max(w, h)
        long = int(load_size * long / short)
        return (load_size, long) if w <= h else (long, load_size)
    if mode == "fixed":
        return crop_size, round(crop_size / aspect_ratio)
    if mode == "none":  # each side rounded to a multiple of 32
        return max(32, int(round(w / 32) * 32)), max(32, int(round(h / 32) * 32))
    return w, h  # "crop"


def draw_geometry(size, mode, load_size, crop_size, aspect_ratio=1.0, flip=True):
    """Random crop corner and flip for one sample, drawn from torch's RNG (seeded per loader worker)."""
    w, h = resized_size(size, mode, load_size, crop_size, aspect_ratio)
    x = y = 0
    if "crop" in mode:
        x = int(torch.randint(0, max(0, w - crop_size) + 1, ()))
        y = int(torch.randint(0, max(0, h - crop_size) + 1, ()))
    do_flip = bool(flip) and bool(torch.rand(()) < 0.5)
    return {"size": (w, h), "crop": (x, y) if "crop" in mode else None, "flip": do_flip}


def apply_geometry(img, geometry, crop_size, resample):
    """Resize, crop (zero padding past the border, as PIL does) and flip one PIL image."""
    if img.size != geometry["size"]:
        img = img.resize(geometry["size"], resample)
    if geometry["crop"] is not None:
        x, y = geometry["crop"]
        img = img.crop((x, y, x + crop_size, y + crop_size))
    if geometry["flip"]:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def image_to_tensor(img):
    """PIL RGB -> float (3, H, W) in [-1, 1]."""
    array = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).div_(127.5).sub_(1.0)


def read_index_map(path, what="label", colors=None):
    """A single-channel PNG of integer indices as a PIL image (mode L, P, I or I;16); a colour image
    through ``colors`` (RGB by class index, :mod:`ganzoo.data.colour_masks`) when given."""
    img = Image.open(path)
    img.load()
    if img.mode in ("L", "P", "I", "I;16"):
        return img
    if colors is not None and img.mode in ("RGB", "RGBA", "LA"):
        from ganzoo.data.colour_masks import colors_to_indices
        return colors_to_indices(img, colors, path)
    if what == "instance" and img.mode == "RGB":  # colour-coded instances: one id per colour
        rgb = np.asarray(img, dtype=np.int32)
        return Image.fromarray(rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2], mode="I")
    raise ValueError(f"{path}: {what} map must be single-channel class indices (PIL mode L/P/I), got mode "
                     f"{img.mode}; convert colour-coded labels with ganzoo-labels, or give paired_folders a data.palette")


def label_array(img, path, label_nc, contain_dontcare_label):
    """Integer label array with 255 -> ``label_nc`` (the reference's dontcare rule), range-checked."""
    label = np.asarray(img, dtype=np.int64).copy()
    label[label == DONTCARE_VALUE] = label_nc
    check_label_range(label, path, label_nc + int(bool(contain_dontcare_label)), label_nc, contain_dontcare_label)
    return label


def check_label_range(label, path, num_classes, label_nc=None, contain_dontcare_label=None):
    """Raise a one-line ValueError naming ``path`` when a value is outside [0, num_classes)."""
    low, high = int(label.min()), int(label.max())
    if high < num_classes and low >= 0:
        return
    value = high if high >= num_classes else low
    settings = ""
    if label_nc is not None:
        settings = f" (label_nc={label_nc}, contain_dontcare_label={bool(contain_dontcare_label)})"
    raise ValueError(f"{path}: label value {value} is outside 0..{num_classes - 1} for {num_classes} classes"
                     f"{settings}; raise label_nc or set contain_dontcare_label for 255 = unlabeled")


def load_sample(image_path, label_path, instance_path, opts):
    """One training sample as tensors: ``image`` (3,H,W) in [-1,1], ``label`` long (1,H,W), ``instance``.

    ``opts`` holds preprocess_mode, load_size, crop_size, aspect_ratio, flip, label_nc,
    contain_dontcare_label. The geometry is drawn from the label map's size and shared by all three.
    """
    label_img = read_index_map(label_path, "label", opts.get("palette"))
    label = label_array(label_img, label_path, opts["label_nc"], opts["contain_dontcare_label"])
    label_img = Image.fromarray(label.astype(np.int32), mode="I")
    geometry = draw_geometry(label_img.size, opts["preprocess_mode"], opts["load_size"], opts["crop_size"],
                             opts.get("aspect_ratio", 1.0), opts.get("flip", False))
    crop = opts["crop_size"]
    image = Image.open(image_path).convert("RGB")
    if image.size != label_img.size:  # keep image and label aligned: bring the image to the label's grid
        image = image.resize(label_img.size, Image.BICUBIC)
    sample = {
        "image": image_to_tensor(apply_geometry(image, geometry, crop, Image.BICUBIC)),
        "label": index_tensor(apply_geometry(label_img, geometry, crop, Image.NEAREST)),
        "path": image_path,
    }
    if instance_path is not None:
        instance = read_index_map(instance_path, "instance")
        if instance.size != label_img.size:
            instance = instance.resize(label_img.size, Image.NEAREST)
        sample["instance"] = index_tensor(apply_geometry(instance, geometry, crop, Image.NEAREST))
    return sample


def index_tensor(img):
    return torch.from_numpy(np.asarray(img, dtype=np.int64).copy()).unsqueeze(0)
