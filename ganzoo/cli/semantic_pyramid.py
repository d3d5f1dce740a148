"""Semantic Pyramid applications from a trained checkpoint.

    python tools/semantic_pyramid.py generate RUN --image a.jpg --level conv5 -k 4 -o out.png
    python tools/semantic_pyramid.py repaint  RUN --image a.jpg --box 0.25,0.25,0.75,0.75 -o out.png
    python tools/semantic_pyramid.py compose  RUN --image bg.jpg --object obj.png --mask mask.png -o out.png
    python tools/semantic_pyramid.py relabel  RUN --image a.jpg --class 12 -o out.png
    python tools/semantic_pyramid.py colorize RUN --image gray.jpg -o out.png
    python tools/semantic_pyramid.py sketch   RUN --image drawing.png -o out.png
    python tools/semantic_pyramid.py fid      RUN [--data-root data/places365_standard] [--num-images 2000]

RUN is a checkpoint file, a checkpoints folder or a run folder. Outputs are PNG grids: one row per input
image, its input first, then the k samples.
"""
import argparse
import json

import ganzoo
from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import atomic_path, write_text

APPS = ("generate", "repaint", "compose", "relabel", "colorize", "sketch", "fid")


def build_parser():
    parser = argparse.ArgumentParser(prog="semantic_pyramid", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("app", choices=APPS)
    parser.add_argument("checkpoint", help="checkpoint file, checkpoints folder or run folder")
    parser.add_argument("--image", nargs="+", default=[], help="input image(s) (background for compose)")
    parser.add_argument("--object", help="compose: image holding the object to paste")
    parser.add_argument("--mask", help="compose: object mask (white = object); repaint: region to re-paint")
    parser.add_argument("--box", help="repaint/compose: region as x0,y0,x1,y1 fractions of the image")
    parser.add_argument("--level", help="pyramid level name (default depends on the app)")
    parser.add_argument("--shallow-level", help="repaint: shallowest level kept outside the region")
    parser.add_argument("--class", dest="class_id", type=int, help="class id (class-conditional models)")
    parser.add_argument("-k", type=positive_int, default=4, help="samples per input image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("-o", "--output", default=None, help="output PNG (fid: JSON)")
    parser.add_argument("--data-root", help="fid: dataset root (default: the run config's)")
    parser.add_argument("--split", default="val", help="fid: Places365 split")
    parser.add_argument("--num-images", type=positive_int, default=2000, help="fid: reference images")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--dims", type=int, default=2048, help="fid: Inception feature dims")
    parser.add_argument("--fid-weights", default=None, help="fid: pt_inception weights path")
    parser.add_argument("--allow-few", action="store_true",
                        help="fid: allow fewer images than dims (meaningless values; smoke tests only)")
    return parser


def _load_images(paths, size, device):
    import torch

    from ganzoo.data.image_folder import ImageTransform, load_image
    transform = ImageTransform(size, crop="center")
    return torch.stack([transform(load_image(p)) for p in paths]).to(device)


def _region(args, size, device):
    import torch
    if args.mask:
        return (_load_images([args.mask], size, device)[:, :1] > 0).float()
    if args.box:
        try:
            x0, y0, x1, y1 = (float(v) for v in args.box.split(","))
        except ValueError:
            raise ValueError(f"--box must be x0,y0,x1,y1 fractions, got {args.box!r}") from None
        region = torch.zeros(1, 1, size, size, device=device)
        region[..., round(y0 * size):round(y1 * size), round(x0 * size):round(x1 * size)] = 1
        return region
    raise ValueError(f"{args.app} needs --mask or --box")


def check_inputs(args):
    """The path mistakes, found before torch is imported."""
    require_path(args.checkpoint, "checkpoint")
    for path in args.image:
        require_path(path, "image")
    for path, what in ((args.object, "object image"), (args.mask, "mask")):
        if path:
            require_path(path, what)
    if args.app != "fid" and not args.image:
        raise ValueError(f"{args.app} needs --image")


def run(args):
    check_inputs(args)
    import torch

    from ganzoo.apps import semantic_pyramid as sp
    from ganzoo.device import pick_device

    device = pick_device(args.device)
    model = ganzoo.load(args.checkpoint, device=device)
    cfg = model.config
    size = model.cfg["image_size"]
    if args.app == "fid":
        from ganzoo.engine.options import split_data
        from ganzoo.registry import DATASETS
        data_cfg, _ = split_data(cfg.get("data"))
        if data_cfg.get("type") == "places365":
            data_cfg["split"] = args.split
        if args.data_root:
            data_cfg["root"] = args.data_root
        data_cfg.update(flip=False, crop="center")
        scores = sp.per_level_fid(model, DATASETS.build(data_cfg), args.num_images, args.batch_size, args.dims,
                                  args.fid_weights, args.seed, check=not args.allow_few)
        text = json.dumps(scores, indent=1)
        print(text)
        if args.output:
            write_text(args.output, text + "\n")
        return
    images = _load_images(args.image, size, device)
    common = dict(k=args.k, seed=args.seed)
    cls = args.class_id
    if args.app == "generate":
        out = sp.generate(model, images, args.level or sp.default_level(model, -1), class_ids=cls, **common)
    elif args.app == "repaint":
        out = sp.repaint(model, images, _region(args, size, device), args.level, args.shallow_level,
                         class_ids=cls, **common)
    elif args.app == "compose":
        if not args.object:
            raise ValueError("compose needs --object (and --mask or --box)")
        obj = _load_images([args.object], size, device).expand_as(images)
        region = _region(args, size, device)
        out = sp.compose(model, images, obj, region, args.level, class_ids=cls, **common)
        images = sp.paste(images, obj, region)  # shown as the input column
    elif args.app == "relabel":
        if cls is None:
            raise ValueError("relabel needs --class")
        out = sp.relabel(model, images, cls, args.level, **common)
    elif args.app == "colorize":
        images = sp.to_gray(images)
        out = sp.colorize(model, images, args.level, class_ids=cls, **common)
    else:
        out = sp.sketch_to_photo(model, images, args.level, class_ids=cls, **common)
    rows = torch.cat([images.unsqueeze(1), out.view(len(images), args.k, *out.shape[1:])], 1)
    output = args.output or f"sp_{args.app}.png"
    _save_rows(rows, output)
    print(f"wrote {output}")


def _save_rows(rows, path):
    """Grid with one row per input: ``rows`` (N, 1 + k, 3, H, W)."""
    from PIL import Image

    from ganzoo.engine.report import image_grid
    grid = image_grid(rows.flatten(0, 1), nrow=rows.shape[1])
    with atomic_path(path, ".png") as tmp:
        Image.fromarray(grid.numpy()).save(tmp)


def main(argv=None):
    return run_cli(build_parser(), run, argv)
