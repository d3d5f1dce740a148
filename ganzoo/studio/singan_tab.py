"""The SinGAN tab: random samples, harmonization, editing, paint2image, super-resolution, animation.

Built inside a ``gr.Tab`` by :func:`build`; the model calls are :mod:`ganzoo.studio.singan_handlers`.
Every button is an API endpoint ``/<run>_<action>``; the harmonization widgets have stable elem_ids
(``singan-harmonize-editor``, ``-run``, ``-output``) for the browser test.
"""
import re

from ganzoo.studio import singan_handlers as sh
from ganzoo.studio.uploads import editor_image, editor_mask, guard_upload, user_errors


OUTPUT_HEIGHT = 320  # px on the page: a small training image would otherwise show as a thin strip
#: apps beyond random samples, harmonization and editing (ConSinGAN has no paint2image, SR or animation)
EXTRA_APPS = {"singan": ("paint", "sr", "animation"), "consingan": ()}


def _api(name, action):
    return re.sub(r"\W", "_", f"{name}_{action}")


def _ids(tag, action):
    return f"{tag}-{action}"


def _brush_size(model):
    """A brush a tenth of the training image's short side (Gradio's automatic size covers a small image)."""
    return max(1, min(model.reals[-1].shape[2:]) // 10)


def _mask_editor(gr, label, elem_id, size, what="image"):
    editor = gr.ImageEditor(type="numpy", image_mode="RGBA", label=label, elem_id=elem_id, sources=["upload"],
                            layers=False, transforms=(), eraser=gr.Eraser(default_size=size),
                            brush=gr.Brush(colors=["#ff00ff"], default_color="#ff00ff", color_mode="fixed",
                                           default_size=size))
    return guard_upload(gr, editor, what)


def _injection_scale(gr, low, high, value, elem_id):
    """A slider over the injection scales; a fixed number where there is one (ConSinGAN: stage 0 only)."""
    if low == high:
        return gr.Number(value=low, precision=0, minimum=low, maximum=high, interactive=False, elem_id=elem_id,
                         label="injection scale (this model takes images at its coarsest stage only)")
    return gr.Slider(low, high, value=value, step=1, elem_id=elem_id,
                     label=f"injection scale ({low} = coarse, strong change .. {high} = fine)")


def _random_samples(gr, name, model, last):
    with gr.Row():
        with gr.Column():
            n = gr.Slider(1, 16, value=4, step=1, label="samples")
            seed = gr.Number(value=0, precision=0, label="seed")
            start = gr.Slider(0, last, value=0, step=1, label="start scale (coarser scales keep the layout)")
            scale_h = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="height factor")
            scale_w = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="width factor")
            button = gr.Button("Sample", variant="primary")
        gallery = gr.Gallery(label="samples", columns=4, format="png")

    def run(count, first_seed, start_scale, height_factor, width_factor):
        return sh.singan_random_samples(model, int(count), int(first_seed), height_factor, width_factor,
                                        int(start_scale))

    button.click(user_errors(gr, run), [n, seed, start, scale_h, scale_w], gallery, api_name=_api(name, "samples"))


def _masked(gr, name, model, action, radius, tag):
    low, high = sh.injection_scales(model)
    prefix = _ids(tag, "harmonize" if action == "harmonization" else "edit")
    what = "the pasted object" if action == "harmonization" else "the edited part"
    gr.Markdown(f"Upload the image, brush over {what} (the brushed strokes are the mask), pick the injection "
                "scale (coarser = stronger change) and run.")
    with gr.Row():
        with gr.Column():
            editor = _mask_editor(gr, "image and mask", f"{prefix}-editor", _brush_size(model))
            scale = _injection_scale(gr, low, high, high, f"{prefix}-scale")
            dilation = gr.Slider(0, 40, value=radius, step=1, label="mask dilation radius")
            seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Harmonize" if action == "harmonization" else "Edit", variant="primary",
                               elem_id=f"{prefix}-run")
        with gr.Column():
            if action == "harmonization":
                outputs = gr.Image(label="harmonized", type="numpy", format="png", height=OUTPUT_HEIGHT,
                                 elem_id=f"{prefix}-output")
            else:
                outputs = [gr.Image(label="edited, blended outside the mask", type="numpy", format="png",
                                    elem_id=f"{prefix}-output"),
                           gr.Image(label="raw output", type="numpy", format="png", height=OUTPUT_HEIGHT,
                                    elem_id=f"{prefix}-raw")]

    def run(value, injection, r, s):
        image, mask = editor_image(value), editor_mask(value)
        if action == "harmonization":
            return sh.harmonize(model, image, mask, injection, s, r)
        raw, masked = sh.edit(model, image, mask, injection, s, r)
        return masked, raw

    button.click(user_errors(gr, run), [editor, scale, dilation, seed], outputs,
                 api_name=_api(name, "harmonize" if action == "harmonization" else "edit"))


def _paint2image(gr, name, model, tag):
    low, high = sh.injection_scales(model)
    prefix = _ids(tag, "paint")
    gr.Markdown("Upload a clip-art painting (flat colours in the training image's layout) or paint on a blank "
                "image; quantization maps its colours to the training image's k-means colours first.")
    with gr.Row():
        with gr.Column():
            paint = gr.ImageEditor(type="numpy", image_mode="RGB", label="paint", sources=["upload"],
                                   elem_id=f"{prefix}-editor", layers=False)
            guard_upload(gr, paint, "paint")
            scale = _injection_scale(gr, low, high, low, f"{prefix}-scale")
            quantize = gr.Checkbox(value=False, label="quantize the paint's colours")
            clusters = gr.Slider(2, 12, value=5, step=1, label="colour clusters")
            seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Paint to image", variant="primary", elem_id=f"{prefix}-run")
        output = gr.Image(label="image", type="numpy", format="png", height=OUTPUT_HEIGHT,
                                 elem_id=f"{prefix}-output")

    def run(value, injection, q, k, s):
        if not value or value.get("composite") is None:
            raise ValueError("upload or paint a picture first")
        return sh.paint_to_image(model, value["composite"], injection, q, k, s)

    button.click(user_errors(gr, run), [paint, scale, quantize, clusters, seed], output, api_name=_api(name, "paint"))


def _super_resolution(gr, name, model, tag):
    prefix = _ids(tag, "sr")
    gr.Markdown("Upsample an image (empty: the training image) by the factor; best with a run trained with "
                "configs/singan_sr.yaml.")
    with gr.Row():
        with gr.Column():
            image = gr.Image(type="numpy", image_mode="RGB", label="low-resolution image (optional)",
                             sources=["upload"], elem_id=f"{prefix}-input")
            guard_upload(gr, image)
            factor = gr.Slider(1.25, 8.0, value=4.0, step=0.25, label="factor")
            seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Super-resolve", variant="primary", elem_id=f"{prefix}-run")
        output = gr.Image(label="super-resolved", type="numpy", format="png", height=OUTPUT_HEIGHT,
                                 elem_id=f"{prefix}-output")

    def run(array, f, s):
        return sh.super_resolution(model, f, array, s)

    button.click(user_errors(gr, run), [image, factor, seed], output, api_name=_api(name, "sr"))


def _animation(gr, name, model, last, tag):
    prefix = _ids(tag, "animation")
    with gr.Row():
        with gr.Column():
            start = gr.Slider(0, last, value=min(2, last), step=1, label="start scale")
            alpha = gr.Slider(0.0, 1.0, value=0.1, step=0.01, label="alpha (pull towards the training image)")
            beta = gr.Slider(0.0, 1.0, value=0.9, step=0.01, label="beta (momentum of the walk)")
            frames = gr.Slider(2, 200, value=50, step=1, label="frames")
            fps = gr.Slider(1, 30, value=10, step=1, label="frames per second")
            seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Animate", variant="primary", elem_id=f"{prefix}-run")
        with gr.Column():
            output = gr.Image(label="animation", type="filepath", elem_id=f"{prefix}-output")
            download = gr.File(label="GIF")

    def run(s0, a, b, t, rate, s):
        path = sh.animation(model, int(s0), a, b, int(t), rate, s)
        return path, path

    button.click(user_errors(gr, run), [start, alpha, beta, frames, fps, seed], [output, download],
                 api_name=_api(name, "animation"))


def build(gr, name, model, first=True, kind="singan"):
    """The tab's content for a SinGAN or ConSinGAN run ``name`` (``first``: the page's first run of that kind gets
    the plain elem_ids ``<kind>-<action>-...``, later ones ``<kind>-<run>-<action>-...``)."""
    last = model.trained_scales - 1
    height, width = model.reals[-1].shape[2:]
    tag = kind if first else f"{kind}-{re.sub(r'[^A-Za-z0-9-]', '-', name)}"
    title = {"singan": "SinGAN", "consingan": "ConSinGAN"}[kind]
    gr.Markdown(f"**{title}** `{name}`: {last + 1} scales, {height}x{width} training image. The same calls as "
                "`tools/singan.py <app>`: a seed gives the CLI's picture.")
    apps = EXTRA_APPS[kind]
    with gr.Tabs():
        with gr.Tab("Random samples"):
            _random_samples(gr, name, model, last)
        with gr.Tab("Harmonization"):
            _masked(gr, name, model, "harmonization", 7, tag)
        with gr.Tab("Editing"):
            _masked(gr, name, model, "editing", 20, tag)
        if "paint" in apps:
            with gr.Tab("Paint to image"):
                _paint2image(gr, name, model, tag)
        if "sr" in apps:
            with gr.Tab("Super-resolution"):
                _super_resolution(gr, name, model, tag)
        if "animation" in apps:
            with gr.Tab("Animation"):
                _animation(gr, name, model, last, tag)
