"""ganzoo-sifid: SinGAN's SIFID between real and fake images of the same file stem (official CLI flags).

    ganzoo-sifid --path2real real_dir --path2fake fake_dir [--images_suffix png] [--out SIFID.npy]

Pairs ``1.jpg`` with ``1.png`` (ganzoo writes PNG, the official default is JPEG); ``--images_suffix``
keeps only files of that suffix. Prints each pair's score and the mean ("SIFID: <mean>", as the
official script) and, with ``--out``, saves the per-pair scores (float32, in pair order) as the
official script's SIFID.npy.
"""
import argparse

from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import atomic_path


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-sifid", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--path2real", required=True, help="folder of real images")
    parser.add_argument("--path2fake", required=True, help="folder of generated images, same file stems")
    parser.add_argument("--images_suffix", default=None, help="only images with this suffix (default: any image "
                        "type, paired by stem)")
    parser.add_argument("-c", "--gpu", default=None, help="official flag: GPU index, '' for CPU "
                        "(overridden by --device)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ... (default: from --gpu, else auto)")
    parser.add_argument("--dims", type=int, default=64, choices=(64, 192),
                        help="64 = the official script's layer; 192 = the layer described in the paper")
    parser.add_argument("--weights", default=None, help="inception_v3_google-0cc3c7bd.pth file or folder "
                        "(default: $GANZOO_WEIGHTS, then the torch hub cache); 'random': a random network "
                        "(tests only: the value is labelled not comparable)")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--out", default=None, help="also save the per-pair scores to this .npy file")
    return parser


def device_name(args):
    """--device, else the official --gpu index ('' = CPU), else auto."""
    if args.device:
        return args.device
    if args.gpu is not None:
        return f"cuda:{args.gpu}" if args.gpu != "" else "cpu"
    return "auto"


def run(args):
    require_path(args.path2real, "real image folder")
    require_path(args.path2fake, "fake image folder")
    if args.out and not args.out.endswith(".npy"):
        raise ValueError(f"--out writes a .npy file, got {args.out}")
    import numpy as np

    from ..backbones.weights import NOT_COMPARABLE
    from ..device import pick_device
    from ..metrics.sifid import sifid_of_folders
    scores = sifid_of_folders(args.path2real, args.path2fake, args.images_suffix, args.dims, args.weights,
                              pick_device(device_name(args)), args.batch_size)
    for name, score in scores.items():
        print(f"{name}\t{score:.10g}")
    if args.out:
        with atomic_path(args.out, ".npy") as tmp:
            np.save(tmp, np.asarray(list(scores.values()), dtype=np.float32))
    mean = float(np.mean(np.asarray(list(scores.values()), dtype=np.float64)))
    print(f"SIFID:  {mean}" + (f"  ({NOT_COMPARABLE})" if args.weights == "random" else ""))


def main(argv=None):
    return run_cli(build_parser(), run, argv)
