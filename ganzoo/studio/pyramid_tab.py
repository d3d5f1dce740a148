"""The Semantic Pyramid tab: a photo, a level and a brushed region -> generate, re-paint, compose, re-label,
colorize, sketch to photo (:mod:`ganzoo.studio.pyramid_handlers`, the calls of ``tools/semantic_pyramid.py``).

Every button is an API endpoint ``/<run>_sp_<app>``; elem_ids start with ``pyramid-``.
"""
import re

from ganzoo.studio import pyramid_handlers as ph
from ganzoo.studio.uploads import editor_image, editor_mask, guard_upload, user_errors


def _api(name, action):
    return re.sub(r"\W", "_", f"{name}_sp_{action}")


def _editor(gr, label, elem_id, what="photo"):
    editor = gr.ImageEditor(type="numpy", image_mode="RGBA", label=label, elem_id=elem_id, sources=["upload"],
                            layers=False, transforms=(), eraser=gr.Eraser(),
                            brush=gr.Brush(colors=["#ff00ff"], default_color="#ff00ff", color_mode="fixed"))
    return guard_upload(gr, editor, what)


def build(gr, name, model, first=True):
    """The Semantic Pyramid tab's content for run ``name``."""
    prefix = "pyramid" if first else f"pyramid-{re.sub(r'[^A-Za-z0-9-]', '-', name)}"
    names = ph.levels(model)
    classes = ph.num_classes(model)
    size = model.cfg["image_size"]
    gr.Markdown(f"**Semantic Pyramid** `{name}`: {size}x{size} outputs, levels {', '.join(names)} (shallow to "
                f"deep){f', {classes} classes' if classes else ''}. Photos are centre-cropped to the model's size. "
                "Brush a region on the photo for re-painting. The same calls as `tools/semantic_pyramid.py <app>`.")
    with gr.Row():
        with gr.Column():
            photo = _editor(gr, "photo (brush the region to re-paint)", f"{prefix}-editor")
            level = gr.Dropdown([ph.DEFAULT] + names, value=ph.DEFAULT, label="level (default depends on the app)",
                                elem_id=f"{prefix}-level")
            shallow = gr.Dropdown([ph.DEFAULT] + names, value=ph.DEFAULT,
                                  label="re-paint: shallowest level kept outside the region")
            class_id = gr.Number(value=0, precision=0, visible=bool(classes),
                                 label=f"class (0..{classes - 1}; the class the generator is told)")
            k = gr.Slider(1, 8, value=4, step=1, label="samples")
            seed = gr.Number(value=0, precision=0, label="seed")
            with gr.Row():
                buttons = {app: gr.Button(text, variant="primary" if app == "generate" else "secondary",
                                          elem_id=f"{prefix}-{app}")
                           for app, text in (("generate", "Generate"), ("repaint", "Re-paint region"),
                                             ("relabel", "Re-label"), ("colorize", "Colorize"),
                                             ("sketch", "Sketch to photo"))}
        with gr.Column():
            shown = gr.Image(label="input the model saw", type="numpy", format="png", elem_id=f"{prefix}-input")
            gallery = gr.Gallery(label="samples", columns=4, format="png", elem_id=f"{prefix}-output")
    with gr.Accordion("Compose: paste an object into the photo", open=False):
        with gr.Row():
            obj = _editor(gr, "object image (brush the object)", f"{prefix}-object", "object image")
            compose = gr.Button("Compose", elem_id=f"{prefix}-compose")

    def crop(value):
        return ph.photo_tensor(model, editor_image(value, "photo"))

    def shown_photo(value):
        from ganzoo.studio.handlers import to_rgb_uint8
        return to_rgb_uint8(crop(value)[0])

    def run_generate(value, lv, sh, c, n, s):
        return shown_photo(value), ph.generate(model, editor_image(value, "photo"), lv, n, s, c)

    def run_repaint(value, lv, sh, c, n, s):
        mask = editor_mask(value, what="region")
        out = ph.repaint(model, editor_image(value, "photo"), mask, lv, sh, n, s, c)
        return shown_photo(value), out

    def run_relabel(value, lv, sh, c, n, s):
        return shown_photo(value), ph.relabel(model, editor_image(value, "photo"), c, lv, n, s)

    def run_colorize(value, lv, sh, c, n, s):
        return ph.colorize(model, editor_image(value, "photo"), lv, n, s, c)

    def run_sketch(value, lv, sh, c, n, s):
        return shown_photo(value), ph.sketch(model, editor_image(value, "photo"), lv, n, s, c)

    def run_compose(value, object_value, lv, c, n, s):
        mask = editor_mask(object_value, what="object")
        return ph.compose(model, editor_image(value, "photo"), editor_image(object_value, "object image"), mask,
                          lv, n, s, c)

    inputs = [photo, level, shallow, class_id, k, seed]
    for app, fn in (("generate", run_generate), ("repaint", run_repaint), ("relabel", run_relabel),
                    ("colorize", run_colorize), ("sketch", run_sketch)):
        buttons[app].click(user_errors(gr, fn), inputs, [shown, gallery], api_name=_api(name, app))
    compose.click(user_errors(gr, run_compose), [photo, obj, level, class_id, k, seed], [shown, gallery],
                  api_name=_api(name, "compose"))
