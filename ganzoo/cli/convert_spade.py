"""``ganzoo-convert-spade NET_G.pth [--discriminator NET_D.pth] [--encoder NET_E.pth] --out ckpt.pt``

Converts official NVlabs/SPADE checkpoints (``latest_net_G.pth`` etc., old spectral-norm key names)
into one ganzoo checkpoint that ``load_model``, ``ganzoo-synthesize`` and ``ganzoo-eval`` read. The
model options come from ``opt.txt`` beside the generator file, else from the tensors and the released
models' settings (ADE20K 151, COCO-Stuff 184, Cityscapes 36 input channels); ``--set key=value``
overrides model keys. ``--to-reference DIR`` does the reverse: a ganzoo SPADE checkpoint to
``latest_net_G.pth`` (+ ``_D``, ``_E``) in the official layout.
"""
import argparse
import os
import sys

import torch

from ganzoo.cli.common import USER_ERRORS, report_user_error
from ganzoo.fileio import atomic_path


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-convert-spade", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="official *_net_G.pth, or a ganzoo checkpoint with --to-reference")
    parser.add_argument("--discriminator", default=None, help="official *_net_D.pth")
    parser.add_argument("--encoder", default=None, help="official *_net_E.pth (VAE models; default: beside G)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="model config override, e.g. --set num_upsampling_layers=more (generator keys: generator.ngf=...)")
    parser.add_argument("--out", default=None, help="ganzoo checkpoint to write")
    parser.add_argument("--to-reference", default=None, metavar="DIR",
                        help="write the official layout (latest_net_G.pth ...) of a ganzoo checkpoint into DIR")
    return parser


def _save(obj, path):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def from_reference(args):
    from ganzoo.config import apply_overrides
    from ganzoo.engine.checkpoint import FORMAT
    from ganzoo.nets.spade_convert import discriminator_options, load_into, options_from_checkpoint
    from ganzoo.registry import MODELS

    if not args.out:
        raise ValueError("--out is required (the ganzoo checkpoint to write)")
    model_cfg = {"type": "spade", **options_from_checkpoint(args.checkpoint)}
    if args.discriminator:
        model_cfg["discriminator"] = discriminator_options(args.discriminator)
    model_cfg = apply_overrides(model_cfg, args.set)
    model = MODELS.build(model_cfg)
    load_into(model.G, args.checkpoint)
    if args.discriminator:
        load_into(model.D, args.discriminator)
    if model.E is not None:
        encoder = args.encoder or os.path.join(os.path.dirname(args.checkpoint),
                                               os.path.basename(args.checkpoint).replace("_net_G", "_net_E"))
        load_into(model.E, encoder)
    elif args.encoder:
        raise ValueError("--encoder given but the generator is not a VAE generator (its fc is a conv)")
    cfg = {"model": model_cfg, "data": {}, "train": {}, "eval": {}, "run": {}}
    _save({"format": FORMAT, "model": model.state_dict(), "config": cfg, "progress": {"step": 0},
           "source": os.path.abspath(args.checkpoint)}, args.out)
    print(f"wrote {args.out} (label_nc={model_cfg['label_nc']}, dontcare={model_cfg['contain_dontcare_label']}, "
          f"instance={model_cfg['use_instance']}, vae={model.E is not None})")


def to_reference(args):
    from ganzoo.engine.checkpoint import load_model
    from ganzoo.nets.spade_convert import to_reference as rename

    model, _ = load_model(args.checkpoint)
    os.makedirs(args.to_reference, exist_ok=True)
    for letter, net in (("G", model.G), ("D", model.D), ("E", model.E)):
        if net is not None:
            _save(rename(net.state_dict()), os.path.join(args.to_reference, f"latest_net_{letter}.pth"))
    print(f"wrote latest_net_G/D{'/E' if model.E is not None else ''}.pth to {args.to_reference}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        (to_reference if args.to_reference else from_reference)(args)
    except USER_ERRORS as err:
        return report_user_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
