"""ganzoo-fid: FID between two image folders / .npz statistics, or of a checkpoint's model (pytorch-fid values).

    ganzoo-fid real_dir fake_dir [--dims 2048] [--weights PATH]
    ganzoo-fid real_dir stats.npz
    ganzoo-fid --save-stats real_dir real_stats.npz
    ganzoo-fid --checkpoint run/checkpoints/latest.pt [--config CONFIG] [--num-samples 2000] [key=value ...]
"""
import argparse
import json

from ganzoo.cli.common import positive_int, require_path, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-fid", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("paths", nargs="*", help="two image folders or .npz statistics files "
                        "(with --save-stats: a folder and the .npz to write); with --checkpoint: "
                        "config overrides key=value")
    parser.add_argument("--dims", type=int, default=2048, choices=(64, 192, 768, 2048),
                        help="Inception features (2048 = the standard FID)")
    parser.add_argument("--weights", default=None, help="pt_inception-2015-12-05-6726825d.pth file or folder "
                        "(default: $GANZOO_WEIGHTS, then the torch hub cache); 'random': a random network "
                        "(tests only: the value is labelled not comparable)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="default: 256 on CUDA, 50 on CPU")
    parser.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda:1 ...")
    parser.add_argument("--num-workers", type=int, default=None, help="image decoding processes")
    parser.add_argument("--save-stats", action="store_true", help="write the statistics of the first path "
                        "to the second (a pytorch-fid .npz)")
    parser.add_argument("--cache-dir", default=None, help="folder statistics cache (default ~/.cache/ganzoo/"
                        "fid_stats or $GANZOO_CACHE/fid_stats)")
    parser.add_argument("--no-cache", action="store_true", help="never read or write cached statistics")
    parser.add_argument("--checkpoint", default=None, help="evaluate this checkpoint's model against its dataset")
    parser.add_argument("--config", default=None, help="with --checkpoint: config whose data section to use "
                        "(default: the config saved in the checkpoint)")
    parser.add_argument("--num-samples", type=positive_int, default=2000, help="with --checkpoint: samples to draw")
    parser.add_argument("--real-stats", default=None, help="with --checkpoint: .npz of the real images")
    return parser


def check_args(args):
    """The path and value mistakes, found before torch is imported."""
    if args.checkpoint:
        require_path(args.checkpoint, "checkpoint")
        if args.config:
            require_path(args.config, "config")
        return
    if len(args.paths) != 2:
        raise ValueError(f"give exactly two paths (folders or .npz files), got {len(args.paths)}")
    inputs = args.paths[:1] if args.save_stats else args.paths
    for path in inputs:
        require_path(path, "image folder or .npz statistics file")
    if args.save_stats and not args.paths[1].endswith(".npz"):
        raise ValueError(f"--save-stats writes a .npz file, got {args.paths[1]}")


def run(args):
    check_args(args)
    import torch

    from ..backbones.weights import NOT_COMPARABLE
    from ..device import pick_device
    from ..metrics.fid import FIDFeatures, default_batch_size, fid_of_paths, path_statistics, save_stats
    cache_dir = False if args.no_cache else args.cache_dir
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True     # one input shape (299x299): pick the fastest kernels once
    args.batch_size = args.batch_size or default_batch_size(device)
    if args.checkpoint:
        from .eval import evaluate_checkpoint
        metric = {"type": "fid", "num_samples": args.num_samples, "dims": args.dims, "weights": args.weights,
                  "batch_size": args.batch_size, "real_stats": args.real_stats, "cache_dir": cache_dir}
        print(json.dumps(evaluate_checkpoint(args.checkpoint, args.config, args.paths, [metric], device)))
        return 0
    if args.save_stats:
        folder, out = args.paths
        features = FIDFeatures(args.dims, args.weights, device)
        mu, sigma = path_statistics(folder, features, args.batch_size, args.num_workers, cache_dir)
        save_stats(out, mu, sigma)
        print(f"saved statistics of {folder} to {out}" + (f" ({NOT_COMPARABLE})" if features.random_weights else ""))
        return 0
    value = fid_of_paths(*args.paths, dims=args.dims, weights=args.weights, batch_size=args.batch_size,
                         device=device, num_workers=args.num_workers, cache_dir=cache_dir)
    print(f"FID: {value}" + (f"  ({NOT_COMPARABLE})" if args.weights == "random" else ""))
    return 0


def main(argv=None):
    return run_cli(build_parser(), run, argv)
