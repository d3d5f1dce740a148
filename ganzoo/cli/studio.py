"""``ganzoo-studio RUN_DIR [RUN_DIR ...] [--port 7860] [--host 127.0.0.1] [--device auto] [--share] [--classes F]``

A local web page with a tab per trained run (SPADE: paint or upload a label map; SinGAN: random
samples). Needs ``pip install "ganzoo[studio]"``. Binds 127.0.0.1 unless ``--host`` says otherwise;
``--share`` opens a public Gradio link (off by default).
"""
import argparse
import os
import sys

from ganzoo.cli.common import require_path, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-studio", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders or checkpoint files")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--classes", default=None, metavar="FILE",
                        help="class names, one per line, for label-map runs whose dataset has none")
    return parser


def run_names(paths):
    """A tab name per run: the folder (or file stem) name, made unique with -2, -3 ..."""
    names = []
    for path in paths:
        base = os.path.basename(os.path.normpath(path))
        base = os.path.splitext(base)[0] if os.path.isfile(path) else base
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def run(args):
    for path in args.runs:
        require_path(path, "run")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError('ganzoo-studio needs Gradio: pip install "ganzoo[studio]"') from None
    import ganzoo
    from ganzoo.device import pick_device
    from ganzoo.studio.app import build_app

    device = pick_device(args.device)
    if args.classes:
        require_path(args.classes, "class list")
    models = {name: ganzoo.load(path, device=device) for name, path in zip(run_names(args.runs), args.runs)}
    from ganzoo.studio.uploads import MAX_UPLOAD_BYTES
    app = build_app(models, class_names=args.classes)
    app.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD_BYTES)


def main(argv=None):
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
