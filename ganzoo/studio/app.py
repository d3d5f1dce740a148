"""The studio page: one tab per loaded run, built on :mod:`ganzoo.studio.handlers`.

Gradio is imported inside :func:`build_app` only (never at ``import ganzoo``). Requests are queued and
run one model call at a time; a bad input is a ``gr.Error`` message, not a traceback.
"""
import os
import re

import numpy as np

from ganzoo.studio import handlers

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def api_name(run_name, action):
    """``"<run>_<action>"`` with every character outside [A-Za-z0-9_] replaced by ``_``."""
    return re.sub(r"\W", "_", f"{run_name}_{action}")


def read_label_upload(path):
    """An uploaded label map: single-channel PNG -> HxW indices, colour image -> HxWx3 palette colours."""
    from PIL import Image, UnidentifiedImageError

    if not path:
        raise ValueError("upload a label map first (PNG of class indices or palette colours)")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError):
        raise ValueError(f"{os.path.basename(path)} is not a readable image (upload a PNG label map)") from None
    if img.mode in ("L", "P", "I", "I;16"):
        return np.asarray(img, dtype=np.int64)
    return np.asarray(img.convert("RGB"))


def _hex(colour):
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _legend_html(names, colours):
    swatches = [f'<span style="display:inline-block;margin:2px 8px 2px 0"><span style="display:inline-block;'
                f'width:14px;height:14px;vertical-align:middle;border:1px solid #888;background:{_hex(c)}"></span> '
                f'{k}: {name}</span>' for k, (name, c) in enumerate(zip(names, colours))]
    return "<div>" + "".join(swatches) + "</div>"


def _user_errors(gr, fn):
    """``fn`` with ValueError / OSError turned into a one-line ``gr.Error``."""
    def wrapped(*args):
        try:
            return fn(*args)
        except (ValueError, OSError) as err:
            raise gr.Error(str(err)) from None
    return wrapped


def _spade_tab(gr, name, model):
    colours, names = handlers.spade_palette(model), handlers.spade_class_names(model)
    height, width = model.G.output_size
    background = np.zeros((height, width, 3), np.uint8) + np.asarray(colours[0], np.uint8)
    vae = model.E is not None
    gr.Markdown(f"**SPADE** `{name}`: {model.label_nc} classes, {height}x{width} outputs. Paint with the class "
                "colours or upload a label map (PNG of class indices, 255 = dontcare, or palette colours).")
    gr.HTML(_legend_html(names, colours))
    with gr.Row():
        with gr.Column():
            canvas = gr.ImageEditor(value={"background": background, "layers": [], "composite": background},
                                    type="numpy", image_mode="RGB", label="label canvas",
                                    brush=gr.Brush(colors=[_hex(c) for c in colours], default_color=_hex(colours[-1]),
                                                   color_mode="fixed"))
            upload = gr.File(label="label map upload", file_types=["image"], type="filepath")
            n = gr.Slider(1, 8 if vae else 1, value=1, step=1, label="outputs" + ("" if vae else " (VAE models only)"))
            seed = gr.Number(value=0, precision=0, label="seed")
            with gr.Row():
                from_canvas = gr.Button("Synthesize canvas", variant="primary")
                from_upload = gr.Button("Synthesize upload")
        gallery = gr.Gallery(label="outputs", columns=4)

    def synthesize_canvas(editor, count, first_seed):
        if editor is None or editor.get("composite") is None:
            raise ValueError("draw a label map on the canvas first")
        return handlers.spade_synthesize(model, editor["composite"], int(count), int(first_seed), nearest=True)

    def synthesize_upload(path, count, first_seed):
        return handlers.spade_synthesize(model, read_label_upload(path), int(count), int(first_seed))

    from_canvas.click(_user_errors(gr, synthesize_canvas), [canvas, n, seed], gallery,
                      api_name=api_name(name, "canvas"))
    from_upload.click(_user_errors(gr, synthesize_upload), [upload, n, seed], gallery,
                      api_name=api_name(name, "upload"))


def _singan_tab(gr, name, model):
    last = len(model.generators) - 1
    gr.Markdown(f"**SinGAN** `{name}`: {last + 1} scales. Size factors need start scale 0.")
    with gr.Row():
        with gr.Column():
            n = gr.Slider(1, 16, value=4, step=1, label="samples")
            seed = gr.Number(value=0, precision=0, label="seed")
            start_scale = gr.Slider(0, last, value=0, step=1, label="start scale (coarser scales keep the layout)")
            scale_h = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="height factor")
            scale_w = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="width factor")
            button = gr.Button("Sample", variant="primary")
        gallery = gr.Gallery(label="samples", columns=4)

    def sample(count, first_seed, start, height_factor, width_factor):
        return handlers.singan_random_samples(model, int(count), int(first_seed), height_factor, width_factor,
                                              int(start))

    button.click(_user_errors(gr, sample), [n, seed, start_scale, scale_h, scale_w], gallery,
                 api_name=api_name(name, "samples"))


TABS = {"spade": _spade_tab, "singan": _singan_tab}


def build_app(models):
    """A ``gr.Blocks`` page with a tab per run (``models``: name -> loaded model), queued one call at a time."""
    import gradio as gr

    unsupported = {name: handlers.model_kind(m) for name, m in models.items() if handlers.model_kind(m) not in TABS}
    if unsupported:
        raise ValueError("the studio has no tab for " + ", ".join(f"{n} ({k})" for n, k in unsupported.items())
                         + f" yet; supported: {', '.join(TABS)}")
    with gr.Blocks(title="ganzoo studio", analytics_enabled=False) as app:
        gr.Markdown("# ganzoo studio")
        with gr.Tabs():
            for name, model in models.items():
                with gr.Tab(f"{name} ({handlers.model_kind(model)})"):
                    TABS[handlers.model_kind(model)](gr, name, model)
    return app.queue(default_concurrency_limit=1)
