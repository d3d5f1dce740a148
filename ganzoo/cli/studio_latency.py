"""What the studio page adds to a label model's own time.

    python tools/studio_latency.py [CONFIG] [key=value ...] [--run RUN_DIR] [--repeat 5] [--threads N] [--json OUT]

Times one image from a label map two ways in one process, on one machine: ``model.synthesize`` alone
(the one-hot condition made beforehand) and the whole page round trip — a PNG label map uploaded to the
studio served on 127.0.0.1 and synthesized through ``gradio_client`` (upload, decode, the model call,
PNG encode, the downloads, the answer). Reports the medians over ``--repeat`` calls (after one warm-up
each; the two alternate, so that a shared machine's load hits both alike) and their ratio. The model is ``--run`` (a trained run) or built from CONFIG (default
configs/spade_ade20k.yaml, 256x256) with random weights: the time does not depend on them.
"""
import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time

from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import write_text

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "configs", "spade_ade20k.yaml")


def build_parser():
    p = argparse.ArgumentParser(prog="studio_latency", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="YAML config of a label model")
    p.add_argument("overrides", nargs="*", help="config overrides key=value")
    p.add_argument("--run", default=None, help="a trained run (directory or checkpoint) instead of CONFIG")
    p.add_argument("--repeat", type=positive_int, default=5, help="timed calls each way; medians are reported")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="OUT", help="also write the result as JSON")
    return p


def load_model(args):
    import ganzoo
    from ganzoo.engine.options import load_config
    from ganzoo.registry import MODELS

    if args.run:
        require_path(args.run, "run")
        return ganzoo.load(args.run, device="cpu")
    require_path(args.config, "config")
    cfg = load_config(args.config, list(args.overrides))
    model = MODELS.build(cfg["model"]).eval()
    model.config = cfg
    return model


def label_map(height, width, classes, seed):
    """A blocky label map of random classes (8x8 cells), as a painter would make."""
    import numpy as np

    cells = np.random.default_rng(seed).integers(0, classes, (8, 8))
    return np.kron(cells, np.ones((-(-height // 8), -(-width // 8)), np.int64))[:height, :width]


def alternate_times(fns, repeat):
    """Each of ``fns`` once untimed, then ``repeat`` rounds timing each in turn (alternating, so that load
    changes of a shared machine hit both alike) -> a list of times per fn."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, log=print):
    import numpy as np
    import torch
    from PIL import Image

    from ganzoo.studio import handlers

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args)
    if not handlers.synthesizes_from_labels(model):
        raise ValueError(f"{handlers.model_kind(model)} does not synthesize from label maps")
    height, width = handlers.output_size(model)
    label = label_map(height, width, model.label_nc, args.seed)
    _, seg = model.condition({"label": torch.from_numpy(label)[None, None]}, torch.device("cpu"))

    from gradio_client import Client, handle_file

    from ganzoo.studio.app import build_app

    folder = tempfile.mkdtemp(prefix="studio-latency-")
    path = os.path.join(folder, "label.png")
    Image.fromarray(label.astype(np.uint8), mode="L").save(path)
    app = build_app({"bench": model})
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        extra = [None] if handlers.has_style_encoder(model) else []
        direct_times, page_times = alternate_times(
            [lambda: model.synthesize(seg, seed=args.seed),
             lambda: client.predict(handle_file(path), 1, args.seed, *extra, api_name="/bench_upload")], args.repeat)
    finally:
        app.close()
    direct, page = statistics.median(direct_times), statistics.median(page_times)
    log(f"model.synthesize: median {direct:.3f} s; page (gradio_client, upload -> gallery): median {page:.3f} s "
        f"over {args.repeat}")
    result = {"size": [height, width], "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
              "device": f"cpu ({os.cpu_count()} cores)", "torch": torch.__version__,
              "threads": torch.get_num_threads(), "repeat": args.repeat,
              "synthesize_s": direct, "page_s": page, "ratio": page / direct,
              "synthesize_times": direct_times, "page_times": page_times}
    log(f"ratio page / synthesize: {result['ratio']:.3f}")
    print(json.dumps(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


def main(argv=None):
    return run_cli(build_parser(), run, argv, intermixed=True)


if __name__ == "__main__":
    sys.exit(main())
