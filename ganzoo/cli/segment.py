"""Segment photos with a CSAIL ADE20K network: label PNGs (+ colour previews), optionally scored.

    python tools/segment.py --images photos/ --out labels/ --weights ade20k-resnet101-upernet/

writes ``labels/<stem>.png`` (uint8, ADE20K convention: 0 = unlabeled, class k -> k+1; the network
never predicts 0) and ``labels/preview/<stem>.png`` (photo | colour map + names of the classes present).
``photos/`` + ``labels/`` are then a ``paired_folders`` dataset for SPADE (pairing by stem).
With ``--labels GT_DIR`` the written maps are also scored (mIoU, pixel accuracy) into ``scores.json``.
"""
import argparse
import os

from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import atomic_path, write_json

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def parse_scales(text):
    try:
        scales = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scales must be comma-separated short sides like 300,375,450; got {text!r}")
    if not scales or min(scales) <= 0:
        raise argparse.ArgumentTypeError(f"--scales needs at least one positive size, got {text!r}")
    return scales


def build_parser():
    from ..backbones.segmentation import ARCHITECTURES, DEFAULT_MAX_SIZE, DEFAULT_SCALES, INPUT_FORMATS
    p = argparse.ArgumentParser(prog="segment", description=__doc__.split("\n")[0])
    p.add_argument("--images", required=True, help="folder of photos (or one image file)")
    p.add_argument("--out", required=True, help="folder for the label PNGs")
    p.add_argument("--recursive", action="store_true", help="walk sub-folders; the tree is mirrored under --out")
    p.add_argument("--arch", default="ade20k_resnet101_upernet", choices=ARCHITECTURES)
    p.add_argument("--weights", help="folder holding encoder_epoch_N.pth and decoder_epoch_N.pth "
                                     "(default: $GANZOO_WEIGHTS/<model dir>/ or the torch hub cache)")
    p.add_argument("--encoder", help="explicit encoder_epoch_N.pth (with --decoder)")
    p.add_argument("--decoder", help="explicit decoder_epoch_N.pth (with --encoder)")
    p.add_argument("--epoch", type=int, help="N of the *_epoch_N.pth files (default: the published one)")
    p.add_argument("--input-format", default="torch_rgb", choices=INPUT_FORMATS,
                   help="checkpoint generation: torch_rgb = current ade20k-* files (RGB, ImageNet mean/std); "
                        "caffe_bgr = old baseline-* files (BGR, 0-255 minus mean)")
    p.add_argument("--random-weights", action="store_true", help="random network (pipeline tests only)")
    p.add_argument("--scales", type=parse_scales, default=list(DEFAULT_SCALES),
                   help="test short sides, comma-separated (default %(default)s)")
    p.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE, help="cap on the long side per scale")
    p.add_argument("--batch-size", type=positive_int, default=4, help="images per batch (same-size images are batched)")
    p.add_argument("--workers", type=int, default=2, help="image decoding processes")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument("--no-previews", action="store_true", help="do not write colour previews")
    p.add_argument("--previews", help="folder for previews (default <out>/preview)")
    p.add_argument("--skip-existing", action="store_true", help="keep label PNGs that already exist (resume)")
    p.add_argument("--labels", help="ground-truth label folder (ADE20K convention) to score the output against")
    return p


def find_images(root, recursive):
    """Sorted (path, relative stem) pairs; the stems must be unique (they name the outputs)."""
    if os.path.isfile(root):
        return [(root, os.path.splitext(os.path.basename(root))[0])]
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--images {root} is neither a folder nor a file")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if not recursive:
            dirs.clear()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                path = os.path.join(folder, name)
                found.append((path, os.path.splitext(os.path.relpath(path, root))[0]))
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root}"
                                + ("" if recursive else " (use --recursive for sub-folders)"))
    stems = {}
    for path, stem in found:
        if stem in stems:
            raise ValueError(f"{stems[stem]} and {path} would both write {stem}.png; rename one")
        stems[stem] = path
    return found


def image_size(path):
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None


class ImageFiles:
    """uint8 (3, H, W) tensors of photos, for a DataLoader with same-size batches."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        import numpy as np
        import torch
        from PIL import Image
        path = self.paths[index]
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"))
        except OSError as err:
            raise ValueError(f"cannot read image {path}: {err}") from None
        return torch.from_numpy(array.copy()).permute(2, 0, 1), index


def same_size_batches(sizes, batch_size):
    """Index batches of at most ``batch_size`` images that all have the same size, in file order."""
    groups = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    batches = [group[i:i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]
    return sorted(batches, key=lambda b: b[0])


def palette():
    """(151, 3) uint8: value 0 (unlabeled) black, classes 1..150 a fixed distinct colour each."""
    import numpy as np
    from ..data.palettes import distinct_colors
    return np.asarray(distinct_colors(151), dtype=np.uint8)


def preview(photo, label_values, names, colours, max_legend=12):
    """Photo | colour map side by side, with a legend of the largest classes present."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    h, w = label_values.shape
    coloured = Image.fromarray(colours[label_values])
    values, counts = np.unique(label_values, return_counts=True)
    present = [int(v) for v, _ in sorted(zip(values, counts), key=lambda vc: -vc[1]) if v > 0][:max_legend]
    row = 14
    canvas = Image.new("RGB", (max(2 * w, 240), h + row * len(present) + 4), (255, 255, 255))
    canvas.paste(photo, (0, 0))
    canvas.paste(coloured, (w, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, value in enumerate(present):
        y = h + 2 + i * row
        draw.rectangle([4, y + 1, 14, y + 11], fill=tuple(int(c) for c in colours[value]), outline=(0, 0, 0))
        share = 100.0 * float(counts[list(values).index(value)]) / label_values.size
        draw.text((20, y), f"{value:3d} {names[value - 1]}  {share:.1f}%", fill=(0, 0, 0), font=font)
    return canvas


def save_png(img, path):
    """Atomic PNG write (tmp + rename) so an interrupted run leaves no half-written label map."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def run(args):
    if bool(args.encoder) != bool(args.decoder):
        raise ValueError("--encoder and --decoder go together (or use --weights DIR)")
    for path, what in ((args.encoder, "encoder weights"), (args.decoder, "decoder weights")):
        if path:
            require_path(path, what)
    items = find_images(args.images, args.recursive)
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from ..backbones.segmentation import ade20k_class_names, build_segmenter, segment
    from ..device import pick_device
    from ..metrics.segmentation import score_label_folders

    if args.random_weights:
        weights = "random"
    elif args.encoder:
        weights = {"encoder": args.encoder, "decoder": args.decoder}
    else:
        weights = args.weights
    device = pick_device(args.device)
    out_path = {stem: os.path.join(args.out, stem + ".png") for _, stem in items}
    if args.skip_existing:
        items = [(p, s) for p, s in items if not os.path.isfile(out_path[s])]
    preview_dir = None if args.no_previews else (args.previews or os.path.join(args.out, "preview"))
    paths = [p for p, _ in items]
    sizes = [image_size(p) for p in paths]  # fail fast on unreadable files, before any compute
    network = build_segmenter(args.arch, weights=weights, epoch=args.epoch, input_format=args.input_format)
    network.to(device).eval()
    names, colours = ade20k_class_names(), palette()
    loader = DataLoader(ImageFiles(paths), batch_sampler=same_size_batches(sizes, args.batch_size),
                        num_workers=min(args.workers, len(paths)), pin_memory=device.type == "cuda")
    with tqdm(total=len(paths), unit="img", desc="segment", disable=None) as bar:
        for images, indices in loader:
            x = images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
            with torch.no_grad():
                values = (segment(network, x, args.scales, args.max_size) + 1).to(torch.uint8).cpu().numpy()
            for value_map, photo, index in zip(values, images, indices.tolist()):
                stem = items[index][1]
                save_png(Image.fromarray(value_map, mode="L"), out_path[stem])
                if preview_dir:
                    photo_img = Image.fromarray(photo.permute(1, 2, 0).numpy())
                    save_png(preview(photo_img, value_map, names, colours), os.path.join(preview_dir, stem + ".png"))
            bar.update(len(indices))
    print(f"wrote {len(paths)} label map(s) to {args.out}" + (f", previews to {preview_dir}" if preview_dir else ""))
    if args.labels:
        result = score_label_folders(args.out, args.labels)
        result["protocol"] = {**network.describe(), "scales": list(args.scales), "max_size": args.max_size,
                              "label_resize": "nearest to the prediction size", "ignored_label": 0}
        write_json(os.path.join(args.out, "scores.json"), result)
        note = f" ({result['resized_labels']} label map(s) resized with nearest)" if result["resized_labels"] else ""
        print(f"mIoU {100 * result['miou']:.2f}  pixel accuracy {100 * result['pixel_accuracy']:.2f}  "
              f"on {result['num_images']} image(s){note}")
    return 0


def main(argv=None):
    return run_cli(build_parser(), run, argv)
