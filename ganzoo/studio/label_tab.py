"""The label-painter tab, for every model that synthesizes from label maps (SPADE, OASIS: ``synthesize(seg, ...)``).

Paint classes on a canvas (class picker with the dataset's names, brush size, eraser, fill) or upload a label
map (PNG of class indices or palette colours); VAE models also take a style image; N outputs with their
seeds, and the label map and outputs as downloads. Built inside a ``gr.Tab`` by :func:`build`; the model
calls are :mod:`ganzoo.studio.handlers`. Widgets have stable elem_ids (``labels-canvas``, ``-class``,
``-run``, ``-output``, ...) for the browser test; a second label run on the page gets ``labels-<run>-...``.
"""
import atexit
import math
import re
import shutil
import tempfile

import numpy as np

from ganzoo.studio import handlers
from ganzoo.studio.uploads import MAX_PIXELS, MAX_UPLOAD_BYTES, read_image_upload, user_errors

CANVAS_SIDE = 256  # the canvas shows small models' label maps enlarged to about this many pixels a side
_results_root = []


def api_name(run_name, action):
    """``"<run>_<action>"`` with every character outside [A-Za-z0-9_] replaced by ``_``."""
    return re.sub(r"\W", "_", f"{run_name}_{action}")


def read_label_upload(path, max_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS):
    """An uploaded label map: single-channel PNG -> HxW indices, colour image -> HxWx3 palette colours.
    Too large or not an image -> a one-line ValueError."""
    if not path:
        raise ValueError("upload a label map first (PNG of class indices or palette colours)")
    return read_image_upload(path, "label map", max_bytes, max_pixels, indices=True)


def canvas_scale(height, width, side=CANVAS_SIDE):
    """Whole-number enlargement of the canvas over the model's output size (1 for big outputs)."""
    return max(1, math.ceil(side / max(height, width)))


def _hex(colour):
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _legend_html(names, colours):
    swatches = [f'<span style="display:inline-block;margin:2px 8px 2px 0"><span style="display:inline-block;'
                f'width:14px;height:14px;vertical-align:middle;border:1px solid #888;background:{_hex(c)}"></span> '
                f'{k}: {name}</span>' for k, (name, c) in enumerate(zip(names, colours))]
    return '<div style="max-height:9em;overflow-y:auto">' + "".join(swatches) + "</div>"


def _results_folder():
    """A fresh folder for one request's downloads (all removed when the studio exits)."""
    if not _results_root:
        _results_root.append(tempfile.mkdtemp(prefix="ganzoo-studio-"))
        atexit.register(shutil.rmtree, _results_root[0], True)
    return tempfile.mkdtemp(dir=_results_root[0])


def canvas_image(editor):
    """The painted label colours of a ``gr.ImageEditor`` value (RGBA) -> HxWx3: the page's composite, or,
    when the page sent none (a value the server set), the strokes' opaque pixels over the background."""
    if not editor or editor.get("background") is None and editor.get("composite") is None:
        raise ValueError("paint a label map on the canvas first")
    if editor.get("composite") is not None:
        return np.asarray(editor["composite"])[..., :3]
    image = np.asarray(editor["background"])[..., :3].copy()
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[2] == 4 and layer.shape[:2] == image.shape[:2]:
            painted = layer[..., 3] > 127
            image[painted] = layer[..., :3][painted]
    return image


def build(gr, name, model, first=True, class_names=None):
    """The label painter for ``model``; ``class_names``: custom names (list or class-list file) for a
    model whose dataset has none."""
    colours = handlers.spade_palette(model)  # what uploaded colour maps use
    paint = handlers.paint_palette(colours)  # one colour per class on the canvas
    names = handlers.spade_class_names(model, class_names)
    height, width = handlers.output_size(model)
    scale = canvas_scale(height, width)
    vae, multimodal = handlers.has_style_encoder(model), handlers.is_multimodal(model)
    prefix = "labels" if first else f"labels-{re.sub(r'[^A-Za-z0-9-]', '-', name)}"
    start_class = min(1, len(names) - 1)
    size = max(2, 2 * scale)

    def blank(k=0):
        return np.zeros((height * scale, width * scale, 4), np.uint8) + np.asarray([*paint[k], 255], np.uint8)

    def brush(k, brush_size):
        return gr.Brush(colors=[_hex(c) for c in paint], default_color=_hex(paint[int(k)]), color_mode="fixed",
                        default_size=int(brush_size))

    gr.Markdown(f"**{handlers.model_kind(model)}** `{name}`: {model.label_nc} classes, {height}x{width} outputs. "
                "Pick a class and paint (the eraser shows the background again; *fill* paints every unpainted "
                "pixel with the class, *clear* the whole canvas), or upload a label map (PNG of class indices, "
                "255 = dontcare, or of the palette colours) and synthesize it, or load it into the canvas to edit.")
    gr.HTML(_legend_html(names, paint))
    with gr.Row():
        with gr.Column():
            with gr.Row():
                picked = gr.Dropdown([(f"{k}: {n}", k) for k, n in enumerate(names)], value=start_class,
                                     label="paint class", elem_id=f"{prefix}-class", filterable=True)
                brush_size = gr.Slider(1, 16 * scale, value=size, step=1, label="brush size",
                                       elem_id=f"{prefix}-brush-size")
            canvas = gr.ImageEditor(value={"background": blank(), "layers": [], "composite": blank()},
                                    type="numpy", image_mode="RGBA", label="label canvas", elem_id=f"{prefix}-canvas",
                                    sources=(), layers=False, transforms=(), format="png",
                                    canvas_size=(width * scale, height * scale),
                                    brush=brush(start_class, size), eraser=gr.Eraser(default_size=size))
            with gr.Row():
                fill = gr.Button("Fill unpainted with class", elem_id=f"{prefix}-fill")
                clear = gr.Button("Clear to class", elem_id=f"{prefix}-clear")
            run = gr.Button("Synthesize canvas", variant="primary", elem_id=f"{prefix}-run")
            upload = gr.File(label="label map upload (PNG)", file_types=["image"], type="filepath",
                             elem_id=f"{prefix}-upload")
            with gr.Row():
                load = gr.Button("Load upload into canvas", elem_id=f"{prefix}-load")
                run_upload = gr.Button("Synthesize upload", elem_id=f"{prefix}-run-upload")
            style = gr.Image(type="filepath", sources=["upload"], label="style image (optional, VAE)", visible=vae,
                             elem_id=f"{prefix}-style", height=160)
            with gr.Row():
                n = gr.Slider(1, 8, value=1, step=1, interactive=multimodal,
                              label="outputs" + ("" if multimodal else " (one: this model is deterministic)"))
                seed = gr.Number(value=0, precision=0, label="first seed")
        with gr.Column():
            gallery = gr.Gallery(label="outputs (seed under each)", columns=4, format="png",
                                 elem_id=f"{prefix}-output")
            downloads = gr.File(label="downloads: label map (indices, colours) and outputs", file_count="multiple",
                                interactive=False, elem_id=f"{prefix}-downloads")

    def synthesize(label_map, count, first_seed, style_path, nearest, palette):
        style_image = read_image_upload(style_path, "style image") if (vae and style_path) else None
        images = handlers.spade_synthesize(model, label_map, int(count), int(first_seed), nearest=nearest,
                                           style=style_image, colours=palette)
        label = handlers.label_indices_at_output(model, label_map, nearest, palette)
        files = handlers.save_results(_results_folder(), label, paint, images, int(first_seed))
        return [(image, f"seed {int(first_seed) + k}") for k, image in enumerate(images)], files

    def synthesize_canvas(editor, count, first_seed, style_path=None):
        return synthesize(canvas_image(editor), count, first_seed, style_path, True, paint)

    def synthesize_upload(path, count, first_seed, style_path=None):
        return synthesize(read_label_upload(path), count, first_seed, style_path, False, None)

    def fill_unpainted(editor, k):
        value = {"background": blank(int(k)), "layers": (editor or {}).get("layers") or []}
        return dict(value, composite=canvas_image(value))  # the page recomputes it only on the next stroke

    def load_upload(path):
        label = handlers.spade_label_indices(model, read_label_upload(path))
        from PIL import Image
        image = Image.fromarray(np.asarray(paint, np.uint8)[label]).resize((width * scale, height * scale),
                                                                           Image.NEAREST)
        image = np.asarray(image.convert("RGBA"))
        return {"background": image, "layers": [], "composite": image}

    inputs = [n, seed] + ([style] if vae else [])
    picked.change(lambda k, s: gr.ImageEditor(brush=brush(k, s)), [picked, brush_size], canvas, queue=False,
                  api_visibility="private")
    brush_size.release(lambda k, s: gr.ImageEditor(brush=brush(k, s), eraser=gr.Eraser(default_size=int(s))),
                       [picked, brush_size], canvas, queue=False, api_visibility="private")
    fill.click(fill_unpainted, [canvas, picked], canvas, queue=False, api_visibility="private")
    clear.click(lambda k: {"background": blank(int(k)), "layers": [], "composite": blank(int(k))}, picked, canvas,
                queue=False, api_visibility="private")
    load.click(user_errors(gr, load_upload), upload, canvas, api_visibility="private")
    run.click(user_errors(gr, synthesize_canvas), [canvas, *inputs], [gallery, downloads],
              api_name=api_name(name, "canvas"))
    run_upload.click(user_errors(gr, synthesize_upload), [upload, *inputs], [gallery, downloads],
                     api_name=api_name(name, "upload"))
