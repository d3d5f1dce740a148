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

import ganzoo
from ganzoo.cli.common import require_path, run_cli
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
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def from_reference(args):
    if not args.out:
        raise ValueError("--out is required (the ganzoo checkpoint to write)")
    for path, what in ((args.discriminator, "discriminator"), (args.encoder, "encoder")):
        if path:
            require_path(path, what)
    from ganzoo.engine.checkpoint import FORMAT
    from ganzoo.nets.spade_convert import build_from_reference

    model, model_cfg = build_from_reference(args.checkpoint, args.discriminator, args.encoder, args.set)
    cfg = {"model": model_cfg, "data": {}, "train": {}, "eval": {}, "run": {}}
    _save({"format": FORMAT, "model": model.state_dict(), "config": cfg, "progress": {"step": 0},
           "source": os.path.abspath(args.checkpoint)}, args.out)
    print(f"wrote {args.out} (label_nc={model_cfg['label_nc']}, dontcare={model_cfg['contain_dontcare_label']}, "
          f"instance={model_cfg['use_instance']}, vae={model.E is not None})")


def to_reference(args):
    from ganzoo.nets.spade_convert import to_reference as rename

    model = ganzoo.load(args.checkpoint, device="cpu")
    for letter, net in (("G", model.G), ("D", model.D), ("E", model.E)):
        if net is not None:
            _save(rename(net.state_dict()), os.path.join(args.to_reference, f"latest_net_{letter}.pth"))
    print(f"wrote latest_net_G/D{'/E' if model.E is not None else ''}.pth to {args.to_reference}")


def run(args):
    require_path(args.checkpoint, "checkpoint")
    (to_reference if args.to_reference else from_reference)(args)


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
