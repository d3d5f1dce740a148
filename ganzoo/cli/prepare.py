"""``ganzoo-prepare DATASET ROOT [--download] [--split train val]``

Checks a dataset folder against the official layout and file counts, fills what is missing from the
official archives (found in ROOT/downloads/, ROOT/ or beside ROOT; fetched with --download), builds what
the official download lacks (COCO-Stuff instance maps) and prints what is still missing, with URL and size.
Datasets: ade20k, places365, coco-stuff, cityscapes. Re-running a finished dataset changes nothing; an
interrupted run continues. Exit 0 when complete, 1 when something is missing, 2 on bad input.
"""
import argparse

from ganzoo.cli.common import positive_int, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-prepare", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="ade20k, places365, coco-stuff or cityscapes")
    parser.add_argument("root", help="the dataset folder (the loader's data.root)")
    parser.add_argument("--download", action="store_true",
                        help="fetch missing archives with a public URL into ROOT/downloads/ (not Cityscapes: login)")
    parser.add_argument("--split", nargs="+", default=["train", "val"], help="splits to check (default: train val)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes for building COCO-Stuff instance maps (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run(args):
    from ganzoo.data.prepare import prepare

    return prepare(args.dataset, args.root, splits=args.split, download=args.download,
                   progress=not args.no_progress, workers=args.workers)


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
