"""``ganzoo-sweep CONFIG --grid key=v1,v2 [key2=a,b] [--zip] [--repeat-seeds N] --out SWEEP_DIR [--workers N]``."""
import argparse
import csv
import io
import os
import sys

from ganzoo.cli.common import positive_int, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-sweep", description=(
        "Train one run per setting of a grid (one run directory each, named by its overrides); re-running "
        "skips finished runs and resumes broken ones."))
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2", help="swept keys and values")
    parser.add_argument("--zip", action="store_true", help="pair the values position by position, not all combinations")
    parser.add_argument("--repeat-seeds", type=positive_int, default=1, help="run each setting with seeds 0..N-1")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides shared by every run")
    parser.add_argument("--out", required=True, help="sweep directory")
    parser.add_argument("--workers", type=positive_int, default=1, help="runs at a time (local processes)")
    parser.add_argument("--threads", type=positive_int, default=None, help="threads per worker (default cores // workers)")
    return parser


def sweep(args):
    from ganzoo.fileio import write_json, write_text
    from ganzoo.sweep import grid, local

    settings = {grid.run_name(o): o for o in grid.expand(grid.parse_grid(args.grid), args.zip, args.repeat_seeds)}
    settings = {name: args.set + o for name, o in settings.items()}
    codes = local.run_local(args.config, settings, args.out, args.workers, args.threads)
    rows = local.collect(settings, args.out)
    write_json(os.path.join(args.out, "sweep.json"), rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(args.out, "sweep.csv"), text.getvalue())
    failed = [name for name, rc in codes.items() if rc]
    print(f"{len(rows) - len(failed)}/{len(rows)} runs done; {args.out}/sweep.csv"
          + (f"; failed (see their sweep.log): {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def main(argv=None):
    return run_cli(build_parser(), sweep, argv)


if __name__ == "__main__":
    sys.exit(main())
