"""Write a small generated paired-folders set for trying SPADE: random scenes of textured regions.

    python tools/spade_toy_data.py OUT_DIR TEXTURE1.png TEXTURE2.png ... [--count 64] [--size 64]

Each scene has class 0 (a sky-like vertical gradient) and one region per texture class (1..K): a ground
band, blobs and rectangles. Images are cut from the given texture photos, so the model must learn which
texture goes with which label. Writes OUT_DIR/images/*.png and OUT_DIR/labels/*.png (indices 0..K).
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ganzoo.cli.common import positive_int, require_path, run_cli  # noqa: E402


def scene(rng, size, num_textures):
    label = np.zeros((size, size), np.uint8)
    horizon = rng.integers(size // 3, 2 * size // 3)
    label[horizon:] = rng.integers(1, num_textures + 1)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.integers(1, 4)):
        cls = rng.integers(1, num_textures + 1)
        cy, cx, r = rng.integers(0, size), rng.integers(0, size), rng.integers(size // 8, size // 3)
        if rng.random() < 0.5:
            label[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = cls
        else:
            label[max(cy - r, 0):cy + r, max(cx - r, 0):cx + r] = cls
    return label


def build_parser():
    parser = argparse.ArgumentParser(prog="spade_toy_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("textures", nargs="+")
    parser.add_argument("--count", type=positive_int, default=64)
    parser.add_argument("--size", type=positive_int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def run(args):
    for path in args.textures:
        require_path(path, "texture image")
    rng = np.random.default_rng(args.seed)
    textures = [np.asarray(Image.open(p).convert("RGB").resize((args.size * 2, args.size * 2), Image.BICUBIC))
                for p in args.textures]
    sky = np.linspace([70, 120, 210], [190, 215, 245], args.size).astype(np.uint8)[:, None, :].repeat(args.size, 1)
    for sub in ("images", "labels"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    for i in range(args.count):
        label = scene(rng, args.size, len(textures))
        image = sky.copy()
        for k, texture in enumerate(textures, start=1):
            y, x = rng.integers(0, args.size, 2)
            image[label == k] = texture[y:y + args.size, x:x + args.size][label == k]
        Image.fromarray(image).save(os.path.join(args.out, "images", f"scene_{i:04d}.png"))
        Image.fromarray(label, mode="L").save(os.path.join(args.out, "labels", f"scene_{i:04d}.png"))
    print(f"wrote {args.count} scenes with {len(textures) + 1} classes to {args.out}")


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
