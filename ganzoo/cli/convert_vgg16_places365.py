"""Convert the official Caffe VGG16-Places365 into a plain PyTorch state dict (no Caffe needed).

    python tools/convert_vgg16_places365.py vgg16_places365.caffemodel deploy_vgg16_places365.prototxt \\
        --mean places365CNN_mean.binaryproto -o vgg16_places365.pth
"""
import argparse

from ganzoo.cli.common import require_path, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="convert_vgg16_places365", description=__doc__.splitlines()[0])
    parser.add_argument("caffemodel", help="vgg16_places365.caffemodel")
    parser.add_argument("prototxt", help="deploy_vgg16_places365.prototxt")
    parser.add_argument("--mean", help="places365CNN_mean.binaryproto: store its per-channel mean with the weights")
    parser.add_argument("-o", "--output", default="vgg16_places365.pth", help="output state dict (.pth)")
    return parser


def run(args):
    for path in (args.caffemodel, args.prototxt, args.mean):
        if path:
            require_path(path, "input file")
    from ganzoo.backbones.caffe import convert_vgg16, save_state_dict
    state = convert_vgg16(args.caffemodel, args.prototxt, mean=args.mean)
    save_state_dict(state, args.output)
    mean = state.get("meta.input_mean_bgr")
    print(f"wrote {args.output} ({len(state)} tensors"
          + (f", mean BGR {[round(float(m), 3) for m in mean]}" if mean is not None else
             ", no --mean: the backbone will use its default mean") + ")")


def main(argv=None):
    return run_cli(build_parser(), run, argv)
