"""``tools/singan.py <app> --checkpoint C --out DIR ...``: SinGAN applications on a trained checkpoint.

Apps: random_samples, animation, harmonization, editing, paint2image, sr. See docs/singan.md. A ConSinGAN
checkpoint takes random_samples, harmonization, editing and paint2image (injection scale 0; docs/consingan.md).
"""
import argparse
import os
import sys

import ganzoo
from ganzoo.cli.common import positive_int, require_path, run_cli, subcommand_debug_flag


def _common(parser):
    parser.add_argument("--checkpoint", required=True, help="checkpoint file, checkpoints/ folder or run folder")
    parser.add_argument("--out", required=True, help="folder the images are written to (made when one is written)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--seed", type=int, default=None, help="noise seed (default: random)")
    subcommand_debug_flag(parser)


def build_parser():
    parser = argparse.ArgumentParser(prog="singan", description=__doc__.splitlines()[0])
    apps = parser.add_subparsers(dest="app", required=True, metavar="APP")

    p = apps.add_parser("random_samples", help="random samples from any start scale, any size")
    _common(p)
    p.add_argument("--num", type=positive_int, default=50, help="number of samples (official: 50)")
    p.add_argument("--start-scale", type=int, default=0, help="scales below it keep the training layout (z*)")
    p.add_argument("--scale-v", type=float, default=1.0, help="vertical size factor (needs start scale 0)")
    p.add_argument("--scale-h", type=float, default=1.0, help="horizontal size factor (needs start scale 0)")

    p = apps.add_parser("animation", help="random-walk GIF from a start scale")
    _common(p)
    p.add_argument("--start-scale", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.1, help="pull towards z* (official default 0.1)")
    p.add_argument("--beta", type=float, default=0.9, help="momentum of the walk (official: 0.80..0.95)")
    p.add_argument("--frames", type=positive_int, default=100)
    p.add_argument("--fps", type=float, default=10)

    for name, radius in (("harmonization", 7), ("editing", 20)):
        p = apps.add_parser(name, help=f"{name} of a reference image with a mask")
        _common(p)
        p.add_argument("--ref", required=True, help="reference image (pasted object / edited image)")
        p.add_argument("--mask", default=None, help="mask image (default: <ref stem>_mask<ext>)")
        p.add_argument("--scale", type=int, required=True,
                       help="injection scale: 1..N for SinGAN (N = number of scales - 1), 0 for ConSinGAN")
        p.add_argument("--radius", type=int, default=radius, help="mask dilation radius")

    p = apps.add_parser("paint2image", help="clip-art painting to a realistic image")
    _common(p)
    p.add_argument("--paint", required=True)
    p.add_argument("--scale", type=int, required=True, help="injection scale: 1..N for SinGAN, 0 for ConSinGAN")
    p.add_argument("--quantize", action="store_true", help="map the paint to the real image's k-means colours")
    p.add_argument("--clusters", type=int, default=5)

    p = apps.add_parser("sr", help="super-resolution (model trained with configs/singan_sr.yaml)")
    _common(p)
    p.add_argument("--factor", type=float, default=4.0)
    p.add_argument("--image", default=None, help="low-resolution image (default: the training image)")
    return parser


def check_inputs(args):
    """Every input path named by the app, checked before torch is imported; returns the mask path of
    harmonization / editing (default: ``<ref stem>_mask<ext>``)."""
    require_path(args.checkpoint, "checkpoint")
    for flag, what in (("ref", "reference image"), ("paint", "paint image"), ("image", "image")):
        if getattr(args, flag, None):
            require_path(getattr(args, flag), what)
    if args.app in ("harmonization", "editing"):
        stem, ext = os.path.splitext(args.ref)
        mask = args.mask or f"{stem}_mask{ext}"
        if not os.path.exists(mask):
            raise FileNotFoundError(f"mask {mask} not found" + ("" if args.mask else " (give --mask)"))
        return mask
    return None


def _read(path):
    from ganzoo.data.single_image import load_image

    return load_image(path)


def run(args):
    mask_path = check_inputs(args)
    import torch

    from ganzoo.apps import singan as apps

    model = ganzoo.load(args.checkpoint, device=args.device)
    if not hasattr(model, "inject"):
        raise ValueError(f"{args.checkpoint} is not a SinGAN or ConSinGAN checkpoint")
    written = []
    if args.seed is not None:
        torch.manual_seed(args.seed)
    if args.app == "random_samples":
        images = apps.random_samples(model, args.num, args.start_scale, args.seed, args.scale_v, args.scale_h)
        for i, image in enumerate(images):
            written.append(apps.save_image(image, os.path.join(args.out, f"{i}.png")))
    elif args.app == "animation":
        frames = apps.animation(model, args.start_scale, args.alpha, args.beta, args.frames, args.seed)
        name = f"start_scale={args.start_scale}_alpha={args.alpha:g}_beta={args.beta:g}.gif"
        written.append(apps.save_gif(frames, os.path.join(args.out, name), args.fps))
    elif args.app in ("harmonization", "editing"):
        ref, mask = _read(args.ref), _read(mask_path)
        stem = os.path.splitext(os.path.basename(args.ref))[0]
        base = os.path.join(args.out, f"{stem}_{args.app}_scale={args.scale}")
        if args.app == "harmonization":
            written.append(apps.save_image(apps.harmonization(model, ref, mask, args.scale, args.seed, args.radius),
                                           base + ".png"))
        else:
            raw, masked = apps.editing(model, ref, mask, args.scale, args.seed, args.radius)
            written.append(apps.save_image(raw, base + ".png"))
            written.append(apps.save_image(masked, base + "_masked.png"))
    elif args.app == "paint2image":
        out = apps.paint2image(model, _read(args.paint), args.scale, args.quantize, args.clusters, args.seed)
        stem = os.path.splitext(os.path.basename(args.paint))[0]
        suffix = "_quantized" if args.quantize else ""
        written.append(apps.save_image(out, os.path.join(args.out, f"{stem}_paint2image_scale={args.scale}{suffix}.png")))
    elif args.app == "sr":
        image = None if args.image is None else _read(args.image)
        out = apps.super_resolution(model, args.factor, image, args.seed)
        stem = "training_image" if args.image is None else os.path.splitext(os.path.basename(args.image))[0]
        written.append(apps.save_image(out, os.path.join(args.out, f"{stem}_SR_x{args.factor:g}.png")))
    print(f"wrote {len(written)} file(s) to {args.out}")


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
