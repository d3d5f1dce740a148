"""``ganzoo-sweep CONFIG|SWEEP.yaml [--grid key=v1,v2 …] [--images DIR] --out SWEEP_DIR [--workers N]``."""
import argparse
import csv
import io
import os
import sys

from ganzoo.cli.common import positive_int, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-sweep", description=(
        "Train one run per setting of a grid and/or per image (one run directory each, named by its overrides or "
        "the image's stem); re-running skips finished runs and resumes broken ones. Writes OUT/index.html, "
        "sweep.csv and sweep.json."))
    parser.add_argument("config", help="a training config, or a sweep YAML (keys: config, grid, zip, repeat_seeds, "
                                       "set, images, out, executor, workers, threads, slurm)")
    parser.add_argument("--grid", nargs="+", default=None, metavar="KEY=V1,V2", help="swept keys and values")
    parser.add_argument("--zip", action="store_true", default=None,
                        help="pair the values position by position, not all combinations")
    parser.add_argument("--repeat-seeds", type=positive_int, default=None, help="run each setting with seeds 0..N-1")
    parser.add_argument("--set", nargs="+", default=None, metavar="KEY=VALUE", help="overrides shared by every run")
    parser.add_argument("--images", default=None, metavar="DIR|LIST",
                        help="one run per image (data.image): a folder or a text file listing images")
    parser.add_argument("--out", default=None, help="sweep directory")
    parser.add_argument("--executor", default=None, help="local (default) | torchrun | submitit")
    parser.add_argument("--workers", type=positive_int, default=None, help="local: runs at a time")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="threads per run (default: cores // runs at a time)")
    protocol = parser.add_argument_group("single-image protocol (with --images and no --grid)")
    protocol.add_argument("--protocol-samples", type=int, default=50,
                          help="samples per image and start scale for SIFID and diversity (0: skip)")
    protocol.add_argument("--sifid-weights", default=None,
                          help="SIFID Inception weights file (default: the usual lookup)")
    protocol.add_argument("--device", default="auto", help="device of the protocol's sampling and SIFID")
    return parser


def spec_from_args(args):
    from ganzoo.config import parse_value
    from ganzoo.sweep import grid, spec

    base = spec.load(args.config) or {**spec.DEFAULTS, "config": args.config}
    if args.grid is not None:
        base["grid"] = {key: [parse_value(v) for v in values] for key, values in grid.parse_grid(args.grid)}
    if args.set is not None:
        base["set"] = {**base["set"], **dict(_key_value(item) for item in args.set)}
    for name in ("zip", "repeat_seeds", "images", "out", "executor", "workers", "threads"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    return spec.check(base)


def _key_value(item):
    from ganzoo.config import ConfigError, parse_value
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set entry {item!r} is not key=value")
    return key, parse_value(text)


def run_settings(sweep_spec, settings):
    from ganzoo.sweep import executors
    config, out = sweep_spec["config"], sweep_spec["out"]
    kind = sweep_spec["executor"]
    if kind == "torchrun":
        return executors.run_torchrun(config, settings, out, sweep_spec["threads"])
    if kind == "submitit":
        return executors.run_submitit(config, settings, out, sweep_spec["slurm"], sweep_spec["threads"])
    return executors.run_local(config, settings, out, sweep_spec["workers"], sweep_spec["threads"])


def write_tables(out, rows, keys):
    from ganzoo.fileio import write_json, write_text
    from ganzoo.sweep import page
    write_json(os.path.join(out, "sweep.json"), rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(out, "sweep.csv"), text.getvalue())
    page.write_index(out, rows, keys, title=f"ganzoo sweep: {os.path.basename(os.path.abspath(out))}")


def single_image_protocol(args, out, names):
    """SIFID and diversity from scales N and N-1 over the per-image runs -> OUT/single_image.{json,md}."""
    from ganzoo.device import pick_device
    from ganzoo.fileio import write_json, write_text
    from ganzoo.metrics import single_image
    rows, mean = single_image.evaluate_runs([os.path.join(out, n) for n in names], args.protocol_samples,
                                            weights=args.sifid_weights, device=pick_device(args.device))
    write_json(os.path.join(out, "single_image.json"), {"mean": mean, "images": rows})
    table = single_image.markdown_table(rows, mean)
    write_text(os.path.join(out, "single_image.md"), table)
    print(table)


def sweep(args):
    from ganzoo.sweep import runs, spec

    sweep_spec = spec_from_args(args)
    settings = spec.settings(sweep_spec)
    out = sweep_spec["out"]
    runs.check_finished(settings, out)
    os.makedirs(out, exist_ok=True)
    codes = run_settings(sweep_spec, settings)
    if sweep_spec["executor"] == "torchrun" and int(os.environ.get("RANK", "0")) != 0:
        return 1 if any(codes.values()) else 0  # rank 0 writes the tables
    keys = spec.swept_keys(sweep_spec)
    rows = runs.collect(settings, out, spec.swept_values(sweep_spec))
    write_tables(out, rows, keys)
    failed = [name for name, rc in codes.items() if rc]
    print(f"{len(rows) - len(failed)}/{len(rows)} runs done; {out}/index.html"
          + (f"; failed (see their sweep.log): {', '.join(failed)}" if failed else ""), file=sys.stderr)
    if sweep_spec["images"] and not keys and args.protocol_samples > 0 and not failed:
        single_image_protocol(args, out, list(settings))
    return 1 if failed else 0


def main(argv=None):
    return run_cli(build_parser(), sweep, argv)


if __name__ == "__main__":
    sys.exit(main())
