"""Fetch pretrained weights into the torch hub cache (verified), or list what is cached where.

    ganzoo-fetch --list                 # name, file, cached path or "missing", licence
    ganzoo-fetch vgg19 fid_inception    # fetch the missing ones, print each path
    ganzoo-fetch --all                  # everything that has a direct download (prefetch for offline clusters)
"""
import argparse

from ganzoo.cli.common import run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-fetch", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="manifest names (or file names); see --list")
    parser.add_argument("--all", action="store_true", help="every entry that has a direct download")
    parser.add_argument("--list", action="store_true", help="print each entry and where it is cached")
    parser.add_argument("--offline", action="store_true",
                        help="never download (as GANZOO_OFFLINE=1): only report what is there")
    return parser


def list_entries(entries):
    from ganzoo.backbones.weights import local_path
    rows = [(e["name"], e["file"], local_path(e["file"]) or "missing", e["licence"]) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])


def run(args):
    from ganzoo.backbones import manifest
    from ganzoo.backbones.weights import resolve
    from ganzoo.download import set_offline
    if args.list + args.all + bool(args.names) != 1:
        raise ValueError("give NAME ..., --all or --list (one of them)")
    if args.list:
        return list_entries(manifest.ENTRIES)
    if args.all:
        entries = [e for e in manifest.ENTRIES if manifest.urls(e)]
        for e in manifest.ENTRIES:
            if not manifest.urls(e):
                print(f"{e['name']}: no direct download, get {e['file']} from {e['page']}")
    else:
        entries = []
        for name in args.names:
            entry = manifest.find(name)
            if entry is None:
                raise ValueError(f"unknown weights {name!r}; known: {', '.join(e['name'] for e in manifest.ENTRIES)}")
            entries.append(entry)
    if args.offline:
        set_offline(True)
    try:
        for entry in entries:
            print(f"{entry['name']}: {resolve(entry['file'])}", flush=True)
    finally:
        if args.offline:
            set_offline(None)


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
