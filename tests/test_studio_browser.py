"""ganzoo studio end to end in headless Chromium (Debian's ``chromium``, driven by Playwright).

Paints two classes on the label canvas with the mouse, synthesizes, checks the output is the model's for the
painted label map and changes when the painted class changes; brushes a mask on the SinGAN harmonization
tab and harmonizes. ``GANZOO_SCREENSHOTS=DIR`` saves a screenshot of each tab as DIR/studio_<tab>.png.
Skips (with the reason) only where Playwright or a Chromium binary cannot be had.
"""
import io
import os
import shutil
import time
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.registry import MODELS
from ganzoo.studio import handlers
from tests.test_spade_tools import save_ganzoo, tiny_cfg
from tests.test_studio import free_port
from tests.test_studio_tabs import pyramid, pyramid_ckpt, singan, singan_run  # noqa: F401 (fixtures)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*backbone.weights=random")
TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def spade(tmp_path_factory):
    """A tiny VAE SPADE checkpoint with random weights whose pictures depend on the labels: SPADE modulation
    weights at unit gain (the 0.02 init leaves the labels almost no say) and BatchNorm statistics from one
    pass (the init's would shrink every picture to flat grey)."""
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder={"type": "spade_vae_encoder", "z_dim": 8, "ndf": 2, "input_size": 16})
    model = MODELS.build(cfg)
    norms = [m for m in model.G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for name, param in model.G.named_parameters():
            if ".norm_" in name and name.endswith("weight"):
                param.normal_(0, param[0].numel() ** -0.5)
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: one pass gives the statistics
        label = torch.randint(0, 3, (4, 1, 4, 4)).float()
        model.eval()
        for norm in norms:
            norm.train()
        model.sample({"label": torch.nn.functional.interpolate(label, size=(32, 32)).long()}, seed=0)
    for norm in norms:
        norm.momentum = 0.1
    path = tmp_path_factory.mktemp("spade") / "spade.pt"
    save_ganzoo(model.eval(), cfg, path)
    return ganzoo.load(str(path), device="cpu")


def chromium_path():
    return os.environ.get("GANZOO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("gradio")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright missing: pip install playwright")
    path = chromium_path()
    if not path:
        pytest.skip("no Chromium binary (apt-get install chromium, or set GANZOO_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def studio(spade, singan, pyramid, browser):  # noqa: F811
    from ganzoo.studio.app import build_app

    app = build_app({"tiny_spade": spade, "tiny_singan": singan, "tiny_pyramid": pyramid})
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector("#labels-canvas canvas")
    yield page, f"http://127.0.0.1:{port}"
    page.close()
    app.close()


def screenshot(page, tab):
    folder = os.environ.get("GANZOO_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        time.sleep(0.5)  # let images finish drawing
        page.screenshot(path=os.path.join(folder, f"studio_{tab}.png"), full_page=True)


def fetch(base, src):
    """An image or file the page shows (``src``: absolute or relative URL) -> its bytes."""
    url = src if src.startswith("http") else base + src
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def decode(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def canvas_box(page, editor):
    """The on-screen box (x, y, w, h) of the editor's image: the canvas draws it centred, scaled to fit."""
    box = page.locator(f"#{editor} canvas").first.bounding_box()
    return box["x"], box["y"], box["width"], box["height"]


def zoom(page, editor):
    """The editor's zoom (its toolbar shows e.g. "267%") as a factor."""
    text = page.locator(f"#{editor}").evaluate(
        "e => [...e.querySelectorAll('*')].map(n => n.textContent.trim()).find(t => /^\\d+%$/.test(t))")
    return int(text[:-1]) / 100


def stroke(page, start, end):
    """A straight brush stroke (few mouse events: every one is a redraw of the canvas)."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=3)
    page.mouse.up()


def pick_class(page, label, colour):
    """Choose the brush colour of class ``label`` ("k: name") among the editor's class swatches (in the page,
    no server round trip: the class dropdown does the same through the server)."""
    rgb = "rgb({}, {}, {})".format(*colour)
    page.click("#labels-canvas button[aria-label='Color']")
    page.click(f"#labels-canvas menu.swatch button.color[style*='background-color: {rgb}']")
    page.wait_for_function("(rgb) => document.querySelector(\"#labels-canvas button[aria-label='Color']\")"
                           ".style.color === rgb", arg=rgb)
    page.click("#labels-canvas button[aria-label='Brush']")


def choose_class(page, label, colour):
    """Choose ``label`` in the *paint class* dropdown (what fill and clear use); the server then sets the brush
    to its ``colour``: wait for that."""
    page.locator("#labels-class input").click()
    page.locator(f"#labels-class li[role=option][aria-label='{label}']").click()
    page.wait_for_function("(rgb) => document.querySelector(\"#labels-canvas button[aria-label='Color']\")"
                           ".style.color === rgb", arg="rgb({}, {}, {})".format(*colour))


def paint_two_classes(page, first, second):
    """A stroke of class ``first`` above one of class ``second``: each a ("k: name", colour) pair."""
    x, y, w, h = canvas_box(page, "labels-canvas")
    cx, cy = x + w / 2, y + h / 2
    pick_class(page, *first)
    stroke(page, (cx - 60, cy - 40), (cx + 60, cy - 40))
    pick_class(page, *second)
    stroke(page, (cx - 60, cy + 40), (cx + 60, cy + 40))


def run_and_read(page, base, previous=None):
    """Click Synthesize; wait for a new output -> (output image, downloaded label.png indices)."""
    page.click("#labels-run")
    page.wait_for_function(
        "(old) => { const img = document.querySelector('#labels-output img');"
        " return img && img.complete && img.naturalWidth > 0 && img.src !== old; }", arg=previous)
    src = page.locator("#labels-output img").first.get_attribute("src")
    link = page.locator("#labels-downloads a[download='label.png']").first
    label = np.asarray(Image.open(io.BytesIO(fetch(base, link.get_attribute("href")))))
    return src, decode(fetch(base, src)), label


def test_label_canvas_paint_run_and_class_change(studio, spade):  # noqa: F811
    page, base = studio
    names, paint = handlers.spade_class_names(spade), handlers.paint_palette(handlers.spade_palette(spade))
    one, two = (f"1: {names[1]}", paint[1]), (f"2: {names[2]}", paint[2])
    paint_two_classes(page, one, two)
    src, output, label = run_and_read(page, base)
    screenshot(page, "spade")
    # the label map the model got: class 1 above class 2 on a class-0 background, as painted
    assert label.shape == (32, 32) and set(np.unique(label)) == {0, 1, 2}
    rows_1, rows_2 = np.nonzero(label == 1)[0], np.nonzero(label == 2)[0]
    assert rows_1.max() < rows_2.min()
    expected = handlers.spade_synthesize(spade, label, n=1, seed=0)[0]
    assert output.shape == (32, 32, 3) and np.abs(output.astype(int) - expected.astype(int)).max() <= 1
    # fill the unpainted area with class 2: the label map and the picture change
    choose_class(page, *two)
    with page.expect_response(lambda r: r.request.method == "POST" and "/gradio_api/" in r.url):
        page.click("#labels-fill")
    page.wait_for_timeout(2500)  # the new canvas value is drawn
    _, changed, changed_label = run_and_read(page, base, src)
    assert np.array_equal(changed_label == 1, label == 1) and np.all(changed_label[label != 1] == 2)
    assert np.abs(changed.astype(int) - output.astype(int)).mean() > 2
    expected = handlers.spade_synthesize(spade, changed_label, n=1, seed=0)[0]
    assert np.abs(changed.astype(int) - expected.astype(int)).max() <= 1


def test_singan_brush_a_mask_and_harmonize(studio, tmp_path):
    page, base = studio
    small = np.random.default_rng(0).integers(0, 256, (27, 40, 3), dtype=np.uint8)  # the run's image size
    Image.fromarray(small).save(tmp_path / "photo.png")
    page.get_by_role("tab", name="tiny_singan (singan)").click()
    page.get_by_role("tab", name="Harmonization").click()
    page.locator("#singan-harmonize-editor input[type=file]").set_input_files(str(tmp_path / "photo.png"))
    page.wait_for_timeout(2500)  # the uploaded image is drawn into the canvas
    x, y, w, h = canvas_box(page, "singan-harmonize-editor")
    shown = small.shape[1] * zoom(page, "singan-harmonize-editor")  # the image's width on screen, centred
    cx, cy = x + w / 2, y + h / 2
    stroke(page, (cx - shown * 0.3, cy), (cx - shown * 0.2, cy))  # the brush is wide: keep to the left
    scale = page.locator("#singan-harmonize-scale input[type=number]")
    scale.fill("1")  # the coarsest injection: the strongest change (at the finest, random weights change little)
    scale.press("Enter")
    page.click("#singan-harmonize-run")
    page.wait_for_function("() => { const img = document.querySelector('#singan-harmonize-output img');"
                           " return img && img.complete && img.naturalWidth > 0; }")
    screenshot(page, "singan")
    out = decode(fetch(base, page.locator("#singan-harmonize-output img").first.get_attribute("src")))
    assert out.ndim == 3 and out.shape[2] == 3 and min(out.shape[:2]) > 8
    assert out.shape == small.shape  # harmonized at the run's size
    assert not np.array_equal(out, small)  # the brushed region was harmonized (a mask over all of it, too)


def test_pyramid_tab_generates(studio, tmp_path):
    page, _ = studio
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    page.get_by_role("tab", name="tiny_pyramid (semantic_pyramid)").click()
    page.locator("#pyramid-editor input[type=file]").set_input_files(str(tmp_path / "p.png"))
    page.wait_for_timeout(1000)
    page.click("#pyramid-generate")
    page.wait_for_function("() => { const img = document.querySelector('#pyramid-output img');"
                           " return img && img.complete && img.naturalWidth > 0; }")
    screenshot(page, "pyramid")
