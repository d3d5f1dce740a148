"""ganzoo-sifid: SinGAN's SIFID between same-named real and fake images (official CLI flags).

    ganzoo-sifid --path2real real_dir --path2fake fake_dir [--images_suffix png]

Prints each pair's score and the mean ("SIFID: <mean>", as the official script), and saves the
per-pair scores to SIFID.npy (float32, in pair order) like the official script.
"""
import argparse

from ganzoo.cli.common import run_cli
from ganzoo.fileio import atomic_path


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-sifid", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--path2real", required=True, help="folder of real images")
    parser.add_argument("--path2fake", required=True, help="folder of generated images, same file names")
    parser.add_argument("--images_suffix", default="jpg", help="image file suffix (the official default: jpg)")
    parser.add_argument("-c", "--gpu", default=None, help="official flag: GPU index, '' for CPU "
                        "(overridden by --device)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dims", type=int, default=64, choices=(64, 192),
                        help="64 = the official script's layer; 192 = the layer described in the paper")
    parser.add_argument("--weights", default=None, help="inception_v3_google-0cc3c7bd.pth file or folder "
                        "(default: $GANZOO_WEIGHTS, then the torch hub cache)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="SIFID.npy", help="where to save the per-pair scores ('' = don't)")
    return parser


def pick_device(args):
    import torch
    if args.device:
        return args.device
    if args.gpu is not None:
        return f"cuda:{args.gpu}" if args.gpu != "" else "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def run(args):

    import numpy as np

    from ..metrics.sifid import sifid_of_folders
    scores = sifid_of_folders(args.path2real, args.path2fake, args.images_suffix, args.dims, args.weights,
                              pick_device(args), args.batch_size)
    for name, score in scores.items():
        print(f"{name}\t{score:.10g}")
    values = np.asarray(list(scores.values()), dtype=np.float32)
    if args.out:
        with atomic_path(args.out, ".npy") as tmp:
            np.save(tmp, values)
    print("SIFID: ", float(np.mean(np.asarray(list(scores.values()), dtype=np.float64))))
    return 0


def main(argv=None):
    return run_cli(build_parser(), run, argv)
