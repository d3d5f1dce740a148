"""``ganzoo-synthesize --checkpoint C --labels DIR_OR_PNG [--style IMAGE] [--n K] --out DIR``

Images from semantic label maps with a trained SPADE or OASIS model: a ganzoo checkpoint (file or run
folder) or an official NVlabs SPADE generator file (``latest_net_G.pth``; ``latest_net_E.pth`` beside it is
used for a VAE model). SPADE without VAE is deterministic; with VAE ``--style`` encodes a style image and
``--n`` draws K outputs per label map (from N(0, I), or around the style's code with ``--style``). OASIS
draws its 3D noise from the seed: ``--n`` gives K different images per label map.
"""
import argparse
import os
import sys

import ganzoo
from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import atomic_path

MAP_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-synthesize", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="ganzoo checkpoint / run dir, or NVlabs *_net_G.pth")
    parser.add_argument("--labels", required=True, help="a label-map PNG or a folder of them (class indices)")
    parser.add_argument("--instances", default=None, help="instance map PNG or folder (same stems), if the model uses them")
    parser.add_argument("--style", default=None, help="style image (VAE models only)")
    parser.add_argument("--n", type=positive_int, default=1, help="outputs per label map (VAE models only for n > 1)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    parser.add_argument("--keep-size", action="store_true", help="resize outputs back to each label map's size")
    return parser


def list_maps(path, what):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} {path} not found")
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(MAP_EXTENSIONS))
    if not files:
        raise FileNotFoundError(f"{what} folder {path} has no {'/'.join(MAP_EXTENSIONS)} files")
    return files


def load_spade(path, device):
    """(model, cfg) from a ganzoo checkpoint or an official generator file."""
    import torch

    from ganzoo.nets.spade_convert import build_from_reference, is_reference_state, read_state

    if os.path.isfile(path):
        raw = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(raw, dict) and "format" not in raw and is_reference_state(read_state(path)):
            model, model_cfg = build_from_reference(path)
            return model.to(device).eval(), {"model": model_cfg}
    model = ganzoo.load(path, device=device)
    if not hasattr(model, "multimodal"):  # the label-map models (SPADE, OASIS) say whether seeds matter
        raise ValueError(f"{path} holds a {model.config['model']['type']!r} model, which does not synthesize "
                         "from label maps")
    return model, model.config


def read_label(path, model):
    import torch

    from ganzoo.data import segmap
    img = segmap.read_index_map(path, "label")
    label = segmap.label_array(img, path, model.label_nc, model.num_classes > model.label_nc)
    return torch.from_numpy(label)


def main(argv=None):
    return run_cli(build_parser(), run, argv)


def run(args):
    require_path(args.checkpoint, "checkpoint")
    labels = list_maps(args.labels, "labels")
    if args.style:
        require_path(args.style, "style image")
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from ganzoo.data import segmap
    from ganzoo.device import pick_device, to_device

    device = pick_device(args.device)
    model, cfg = load_spade(args.checkpoint, device)
    if model.E is None and args.style:
        raise ValueError("--style needs a model trained with the VAE encoder (model.encoder); this one has none")
    if not model.multimodal and args.n > 1:
        raise ValueError("--n > 1 needs a VAE model: without an encoder the output is deterministic")
    if model.use_instance and not args.instances:
        raise ValueError("this model uses instance maps: pass --instances DIR_OR_PNG")
    instances = None
    if model.use_instance:
        by_stem = {os.path.splitext(os.path.basename(p))[0]: p for p in list_maps(args.instances, "instances")}
        missing = [p for p in labels if os.path.splitext(os.path.basename(p))[0] not in by_stem]
        if missing:
            raise FileNotFoundError(f"no instance map for {', '.join(os.path.basename(p) for p in missing[:5])}")
        instances = [by_stem[os.path.splitext(os.path.basename(p))[0]] for p in labels]
    height, width = model.G.output_size
    style = None
    if args.style:
        style = segmap.image_to_tensor(Image.open(args.style).convert("RGB").resize((width, height), Image.BICUBIC))
        style = style.unsqueeze(0)
    written = 0
    for i, label_path in enumerate(labels):
        label = read_label(label_path, model)
        original = (label.shape[1], label.shape[0])
        label = F.interpolate(label[None, None].float(), size=(height, width), mode="nearest").long()
        batch = {"label": label}
        if instances is not None:
            inst = torch.from_numpy(np.asarray(segmap.read_index_map(instances[i], "instance"), dtype=np.int64))
            batch["instance"] = F.interpolate(inst[None, None].float(), size=(height, width), mode="nearest").long()
        if style is not None:
            batch["style"] = style
        batch = to_device(batch, device)
        stem = os.path.splitext(os.path.basename(label_path))[0]
        for k in range(args.n):
            image = model.sample(batch, seed=args.seed + 1000 * i + k)[0]
            array = ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
            out = Image.fromarray(array)
            if args.keep_size and out.size != original:
                out = out.resize(original, Image.BICUBIC)
            name = f"{stem}.png" if args.n == 1 else f"{stem}_{k:02d}.png"
            with atomic_path(os.path.join(args.out, name)) as tmp:
                out.save(tmp, format="PNG")
            written += 1
    print(f"wrote {written} image(s) to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
