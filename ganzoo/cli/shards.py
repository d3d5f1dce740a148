"""Write the dataset of a config's ``data`` section as WebDataset tar shards (``ganzoo.data.shards``).

    ganzoo-shards configs/spade_ade20k.yaml shards/ade20k_train data.load_size=256   # no random crop
    ganzoo-shards configs/spade_ade20k.yaml shards/ade20k_val data.load_size=256 --split val --per-shard 500

Then train from them with ``data: {type: webdataset, path: OUT}``. The source's flip (``true``, or ``null``
resolved to on for a train split) is switched off while writing and recorded in index.json, so the shard
dataset flips at read time; other random augmentation (random crops) would be frozen into the shards, so it
is reported: turn it off in the config.
"""
import argparse
import sys

from ganzoo.cli.common import positive_int, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-shards", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="YAML config whose data section is sharded")
    parser.add_argument("out_dir", help="output folder (shards and index.json)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.root=/data/ADE")
    parser.add_argument("--per-shard", type=positive_int, default=1000, help="samples per shard (default 1000)")
    parser.add_argument("--split", default=None, help="the dataset's split (as data.split=...), e.g. val")
    parser.add_argument("--prefix", default="shard", help="shard file prefix (default shard)")
    parser.add_argument("--workers", type=int, default=0, help="loader worker processes reading the source")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def effective_flip(dataset, data_cfg):
    """The flip the dataset applies: ``data.flip``, or what the paired datasets resolve ``flip: null`` to
    (on for their train split)."""
    opts = getattr(dataset, "opts", None)
    return bool(opts["flip"] if isinstance(opts, dict) and "flip" in opts else data_cfg.get("flip"))


def is_random(dataset):
    """Whether item 0 differs between two seeds (random crops etc. would be frozen into the shards)."""
    import torch
    draws = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        draws.append(dataset[0]["image"])
    return not torch.equal(*draws)


def run(args):
    from ganzoo.engine.options import build_dataset, load_config
    data_cfg = dict(load_config(args.config, args.overrides)["data"])
    if args.split:
        if "split" not in data_cfg:
            raise ValueError(f"--split: the {data_cfg.get('type')} dataset has no split (give its folders instead)")
        data_cfg["split"] = args.split
    import torch
    from tqdm import tqdm

    from ganzoo.data.shards import write_shards
    dataset = build_dataset(data_cfg)
    flip = effective_flip(dataset, data_cfg)
    if flip:  # flipping happens when the shards are read
        dataset = build_dataset({**data_cfg, "flip": False})
    if len(dataset) and is_random(dataset):
        print("warning: the dataset's items are random (e.g. random crops); the shards keep one draw per item. "
              "Turn random augmentation off in the config (e.g. a center crop) for a faithful copy", file=sys.stderr)
    torch.manual_seed(0)
    items = None
    if args.workers > 0:
        items = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=args.workers)
    progress = None if args.no_progress else (
        lambda source: tqdm(source, total=len(dataset), unit="item", desc="shards", file=sys.stderr))
    index = write_shards(dataset, args.out_dir, per_shard=args.per_shard, prefix=args.prefix, flip=flip,
                         items=items, progress=progress)
    print(f"{index['count']} items in {len(index['shards'])} shard(s) under {args.out_dir} "
          f"(members {', '.join(index['keys'])}; read-time flip {'on' if flip else 'off'})")
    print(f"train from them with a config whose data section is: {{type: webdataset, path: {args.out_dir}}}")


def main(argv=None):
    return run_cli(build_parser(), run, argv, intermixed=True)


if __name__ == "__main__":
    raise SystemExit(main())
