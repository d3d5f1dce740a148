"""``ganzoo-labels MASKS_DIR OUT_DIR [--palette FILE|DATASET] [--classes FILE]``

Turns colour-coded masks into class-index PNGs (uint8, 255 = unlabeled) for the paired_folders dataset,
plus OUT_DIR/classes.txt and OUT_DIR/palette.txt ("R G B name" lines, usable as --palette and as the
dataset's palette key). Classes come from the palette, else from the colours found, most frequent
first. Colours missing from the palette are listed with their pixel counts. The masks are only read.
"""
import argparse

from ganzoo.cli.common import run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-labels", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("masks", help="folder of colour-coded mask images")
    parser.add_argument("out", help="output folder for the index maps (not the mask folder)")
    parser.add_argument("--palette", help="palette file ('R G B [name]' per line, index = line) or ade20k, "
                                          "coco_stuff, cityscapes (default: the colours found, most frequent first)")
    parser.add_argument("--classes", help="class-name file, one per line in index order (names the classes)")
    parser.add_argument("--unlabeled", action="append", default=[], metavar="COLOUR",
                        help="a colour meaning unlabeled, written as 255 (#RRGGBB or R,G,B; repeatable)")
    parser.add_argument("--unknown", choices=("error", "unlabeled"), default="error",
                        help="colours not in --palette: stop (default) or write them as 255")
    return parser


def run(args):
    from ganzoo.data.colour_masks import convert_folder, parse_color

    unlabeled = [parse_color(c) for c in args.unlabeled]
    convert_folder(args.masks, args.out, palette=args.palette, classes=args.classes, unlabeled=unlabeled,
                   unknown=args.unknown)


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
