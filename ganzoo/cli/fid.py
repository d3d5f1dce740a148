"""ganzoo-fid: FID between two image folders / .npz statistics, or of a checkpoint's model (pytorch-fid values).

    ganzoo-fid real_dir fake_dir [--dims 2048] [--weights PATH]
    ganzoo-fid real_dir stats.npz
    ganzoo-fid --save-stats real_dir real_stats.npz
    ganzoo-fid --checkpoint run/checkpoints/latest.pt [--config CONFIG] [--num-samples 2000] [key=value ...]
"""
import argparse
import json

from ganzoo.cli.common import run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-fid", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("paths", nargs="*", help="two image folders or .npz statistics files "
                        "(with --save-stats: a folder and the .npz to write); with --checkpoint: "
                        "config overrides key=value")
    parser.add_argument("--dims", type=int, default=2048, choices=(64, 192, 768, 2048),
                        help="Inception features (2048 = the standard FID)")
    parser.add_argument("--weights", default=None, help="pt_inception-2015-12-05-6726825d.pth file or folder "
                        "(default: $GANZOO_WEIGHTS, then the torch hub cache)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256 on CUDA, 50 on CPU")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--num-workers", type=int, default=None, help="image decoding processes")
    parser.add_argument("--save-stats", action="store_true", help="write the statistics of the first path "
                        "to the second (a pytorch-fid .npz)")
    parser.add_argument("--cache-dir", default=None, help="folder statistics cache (default ~/.cache/ganzoo/"
                        "fid_stats or $GANZOO_CACHE/fid_stats)")
    parser.add_argument("--no-cache", action="store_true", help="never read or write cached statistics")
    parser.add_argument("--checkpoint", default=None, help="evaluate this checkpoint's model against its dataset")
    parser.add_argument("--config", default=None, help="with --checkpoint: config whose data section to use "
                        "(default: the config saved in the checkpoint)")
    parser.add_argument("--num-samples", type=int, default=2000, help="with --checkpoint: samples to draw")
    parser.add_argument("--real-stats", default=None, help="with --checkpoint: .npz of the real images")
    return parser


def run(args):
    import torch

    from ..metrics.fid import FIDFeatures, fid_of_paths, path_statistics, save_stats
    cache_dir = False if args.no_cache else args.cache_dir
    from ..metrics.fid import default_batch_size
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True     # one input shape (299x299): pick the fastest kernels once
    args.batch_size = args.batch_size or default_batch_size(device)
    if args.checkpoint:
        from .eval import evaluate_checkpoint
        metric = {"type": "fid", "num_samples": args.num_samples, "dims": args.dims, "weights": args.weights,
                  "batch_size": args.batch_size, "real_stats": args.real_stats, "cache_dir": cache_dir}
        results = evaluate_checkpoint(args.checkpoint, args.config, args.paths, [metric], device)
        print(json.dumps(results))
        return 0
    if len(args.paths) != 2:
        raise ValueError(f"give exactly two paths (folders or .npz files), got {len(args.paths)}")
    if args.save_stats:
        folder, out = args.paths
        if not out.endswith(".npz"):
            raise ValueError(f"--save-stats writes a .npz file, got {out}")
        features = FIDFeatures(args.dims, args.weights, device)
        mu, sigma = path_statistics(folder, features, args.batch_size, args.num_workers, cache_dir)
        save_stats(out, mu, sigma)
        print(f"saved statistics of {folder} to {out}")
        return 0
    value = fid_of_paths(*args.paths, dims=args.dims, weights=args.weights, batch_size=args.batch_size,
                         device=device, num_workers=args.num_workers, cache_dir=cache_dir)
    print(f"FID: {value}")
    return 0


def main(argv=None):
    return run_cli(build_parser(), run, argv)
