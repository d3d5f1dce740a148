"""Studio SinGAN and Semantic Pyramid tabs: handlers equal the CLIs for a seed, masks limit edits, GIFs,
upload checks, then the page served on 127.0.0.1 through gradio_client."""
import os
import socket

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.apps import semantic_pyramid as sp
from ganzoo.cli.semantic_pyramid import _load_images, main as sp_main
from ganzoo.cli.singan import main as singan_main
from ganzoo.engine.checkpoint import FORMAT
from ganzoo.engine.options import load_config, split_data
from ganzoo.registry import DATASETS, MODELS
from ganzoo.studio import pyramid_handlers as ph, singan_handlers as sh, uploads
from ganzoo.studio.handlers import to_rgb_uint8
from tests.test_semantic_pyramid import TINY as PYRAMID_TINY
from tests.test_singan_apps import CONFIG as SINGAN_CONFIG

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*backbone.weights=random")


@pytest.fixture(scope="module")
def singan_run(tmp_path_factory):
    """A 3-scale SinGAN checkpoint with random weights (BatchNorm statistics from one pass, so the
    output depends on the noise): the apps' arithmetic without the cost of training."""
    cfg = load_config(SINGAN_CONFIG, ["model.max_size=40", "model.min_size=20"])
    torch.manual_seed(0)
    model = MODELS.build(cfg["model"])
    model.prepare(DATASETS.build(split_data(cfg["data"])[0]))
    model.begin_stage(model.num_scales - 1)
    norms = [m for m in model.generators.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: one pass gives the statistics
        norm.train()
    with torch.no_grad():
        model.synthesize(4)
    for norm in norms:
        norm.momentum = 0.1
    path = str(tmp_path_factory.mktemp("singan") / "singan.pt")
    torch.save({"format": FORMAT, "model": model.eval().state_dict(), "config": cfg}, path)
    return path


@pytest.fixture(scope="module")
def singan(singan_run):
    return ganzoo.load(singan_run, device="cpu")


@pytest.fixture(scope="module")
def consingan():
    """A 3-stage ConSinGAN with random weights (its pyramid from a 27x40 photo): the SinGAN tab's kind-specific
    parts without training."""
    cfg = load_config("configs/consingan_quick.yaml", ["model.max_size=40", "model.min_size=20",
                                                        "model.train_stages=3", "model.nfc=8"])
    torch.manual_seed(0)
    model = MODELS.build(cfg["model"])
    model.build_pyramid(torch.rand(1, 3, 27, 40) * 2 - 1)
    for stage in range(3):
        model.begin_stage(stage)
    model.config = cfg  # what ganzoo.load sets
    return model.eval()


@pytest.fixture(scope="module")
def pyramid_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pyramid") / "model.pt"
    torch.save({"format": 1, "model": MODELS.build(PYRAMID_TINY).state_dict(), "config": {"model": dict(PYRAMID_TINY)}},
               path)
    return str(path)


@pytest.fixture(scope="module")
def pyramid(pyramid_ckpt):
    return ganzoo.load(pyramid_ckpt, device="cpu")


def photo(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def box_mask(height, width, y0, y1, x0, x1):
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


def png(array, path):
    Image.fromarray(array).save(path)
    return str(path)


def read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def cli_outputs(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


# ---- SinGAN -------------------------------------------------------------------------------------

def test_singan_harmonize_and_edit_equal_the_cli_and_stay_in_the_mask(singan_run, singan, tmp_path):
    ref, mask = photo(27, 40), box_mask(27, 40, 0, 4, 0, 4)  # the training size: no resize
    png(ref, tmp_path / "ref.png"), png(mask, tmp_path / "ref_mask.png")
    for app in ("harmonization", "editing"):
        out = tmp_path / app
        assert singan_main([app, "--checkpoint", singan_run, "--out", str(out), "--ref", str(tmp_path / "ref.png"),
                            "--scale", "1", "--seed", "3"]) == 0
        files = cli_outputs(out)
        if app == "harmonization":
            got = [sh.harmonize(singan, ref, mask, 1, seed=3)]
        else:
            raw, masked = sh.edit(singan, ref, mask, 1, seed=3)
            got = [raw, masked]  # files: <stem>_editing_scale=1.png, ..._masked.png
        assert len(files) == len(got)
        for path, image in zip(files, got):
            assert np.array_equal(read(path), image), path
    harmonized = sh.harmonize(singan, ref, mask, 1, seed=3)
    # the blend leaves everything farther than radius 7 + blur (20 px) from the 4x4 mask untouched
    assert np.array_equal(harmonized[:, 31:], ref[:, 31:])
    assert np.abs(harmonized[:4, :4].astype(int) - ref[:4, :4]).mean() > 5
    left = sh.harmonize(singan, ref, box_mask(27, 40, 0, 27, 0, 30), 1, seed=3)
    assert not np.array_equal(left[:, 31:], ref[:, 31:])
    assert not np.array_equal(sh.harmonize(singan, ref, mask, 2, seed=3), harmonized)  # the scale is used
    with pytest.raises(ValueError, match="mask is empty"):
        sh.harmonize(singan, ref, np.zeros((27, 40), np.uint8), 1)
    with pytest.raises(ValueError, match=r"injection scale must be in 1\.\.2"):
        sh.harmonize(singan, ref, mask, 3)


def test_singan_paint_sr_and_animation_equal_the_cli(singan_run, singan, tmp_path):
    paint = photo(20, 30, seed=1)  # another size: resized to the model's like the CLI does
    common = ["--checkpoint", singan_run, "--seed", "4"]
    assert singan_main(["paint2image", *common, "--out", str(tmp_path / "p"), "--paint",
                        png(paint, tmp_path / "paint.png"), "--scale", "1", "--quantize", "--clusters", "3"]) == 0
    quantized = sh.paint_to_image(singan, paint, 1, quantize=True, clusters=3, seed=4)
    assert np.array_equal(read(cli_outputs(tmp_path / "p")[0]), quantized)
    assert not np.array_equal(sh.paint_to_image(singan, paint, 1, quantize=False, seed=4), quantized)
    assert singan_main(["sr", *common, "--out", str(tmp_path / "sr"), "--factor", "2"]) == 0
    sr = sh.super_resolution(singan, 2.0, None, seed=4)
    assert sr.shape == (54, 80, 3) and np.array_equal(read(cli_outputs(tmp_path / "sr")[0]), sr)
    assert sh.super_resolution(singan, 2.0, photo(10, 12), seed=4).shape == (20, 24, 3)
    assert singan_main(["animation", *common, "--out", str(tmp_path / "a"), "--start-scale", "1", "--frames", "5"]) == 0
    gif = sh.animation(singan, 1, frames=5, fps=10, seed=4, folder=str(tmp_path / "studio"))
    with Image.open(gif) as mine, Image.open(cli_outputs(tmp_path / "a")[0]) as cli:
        assert mine.n_frames == cli.n_frames == 5 and mine.size == (40, 27)
        for t in range(5):
            mine.seek(t), cli.seek(t)
            assert np.array_equal(np.asarray(mine.convert("RGB")), np.asarray(cli.convert("RGB")))


def test_editor_value_to_image_and_mask():
    background = np.dstack([photo(12, 16), np.full((12, 16), 255, np.uint8)])  # RGBA as the editor sends it
    layer = np.zeros((12, 16, 4), np.uint8)
    layer[2:5, 3:9] = (255, 0, 255, 255)
    value = {"background": background, "layers": [layer], "composite": background}
    assert np.array_equal(uploads.editor_image(value), background[..., :3])
    assert np.array_equal(uploads.editor_mask(value), box_mask(12, 16, 2, 5, 3, 9))
    half = np.zeros((6, 8, 4), np.uint8)  # a layer at another size is scaled to the image
    half[1:2, 1:2, 3] = 255
    assert np.array_equal(uploads.editor_mask({**value, "layers": [half]}), box_mask(12, 16, 2, 4, 2, 4))
    with pytest.raises(ValueError, match="brush a mask on the image first"):
        uploads.editor_mask({**value, "layers": []})
    with pytest.raises(ValueError, match="upload the image into the editor first"):
        uploads.editor_mask({"background": None, "layers": [], "composite": None})


def test_upload_limits_and_non_images(tmp_path):
    with pytest.raises(ValueError, match=r"is 5x4 pixels, more than the studio takes") as err:
        uploads.check_image(photo(4, 5), max_pixels=10)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="HxW grey or HxWx3 colour image"):
        uploads.check_image(np.zeros((4, 5, 2)))
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="notes.png is not a readable image"):
        uploads.read_image_upload(str(tmp_path / "notes.png"))
    path = png(photo(8, 8), tmp_path / "ok.png")
    assert uploads.read_image_upload(path).shape == (8, 8, 3)
    with pytest.raises(ValueError, match=r"ok.png is 0.0 MB, more than the studio takes"):
        uploads.read_image_upload(path, max_bytes=10)
    with pytest.raises(ValueError, match="8x8 pixels, more than"):
        uploads.read_image_upload(path, max_pixels=60)


def test_guarded_components_report_bad_uploads_as_page_messages(tmp_path):
    gr = pytest.importorskip("gradio")
    from gradio.data_classes import FileData, ImageData

    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    image = uploads.guard_upload(gr, gr.Image(type="numpy", render=False), "photo", max_bytes=1000)
    with pytest.raises(gr.Error, match="the photo is not a readable image"):
        image.preprocess(ImageData(path=str(tmp_path / "notes.png")))
    big = png(photo(40, 40), tmp_path / "big.png")
    with pytest.raises(gr.Error, match=r"the photo is 0.0 MB, more than the studio takes"):
        image.preprocess(ImageData(path=big))
    editor = uploads.guard_upload(gr, gr.ImageEditor(type="numpy", render=False), "paint")
    from gradio.components.image_editor import EditorData
    junk = FileData(path=str(tmp_path / "notes.png"))
    with pytest.raises(gr.Error, match="the paint is not a readable image"):
        editor.preprocess(EditorData(background=junk, layers=[], composite=junk))
    assert uploads.guard_upload(gr, gr.Image(type="numpy", render=False)).preprocess(ImageData(path=big)).shape == (40, 40, 3)


# ---- Semantic Pyramid -----------------------------------------------------------------------------

def grid_cells(path, k, size=64, pad=2):
    grid = read(path)
    return [grid[pad:pad + size, pad + j * (size + pad):pad + j * (size + pad) + size] for j in range(1 + k)]


def test_pyramid_handlers_equal_the_cli(pyramid_ckpt, pyramid, tmp_path):
    image, other = photo(70, 90), photo(64, 64, seed=1)  # 70x90: centre-cropped like the CLI's input
    region = box_mask(70, 90, 10, 40, 20, 60)
    paths = {"image": png(image, tmp_path / "a.png"), "mask": png(region, tmp_path / "m.png"),
             "object": png(other, tmp_path / "o.png")}
    flags = {"repaint": ["--mask", paths["mask"], "--class", "0"], "colorize": ["--class", "0"],
             "compose": ["--object", paths["object"], "--mask", paths["mask"], "--class", "2"]}
    cli = {}
    for app, extra in flags.items():  # the apps with a region, an object or a gray input, through the CLI
        out = str(tmp_path / f"{app}.png")
        assert sp_main([app, pyramid_ckpt, "--image", paths["image"], "-k", "2", "--seed", "5", "-o", out] + extra) == 0
        cli[app] = grid_cells(out, 2)  # the input the model saw, then the samples
    studio = {"repaint": [to_rgb_uint8(ph.photo_tensor(pyramid, image)[0])]
                         + ph.repaint(pyramid, image, region, None, ph.DEFAULT, 2, 5, 0)}
    gray, samples = ph.colorize(pyramid, image, None, 2, 5, 0)
    studio["colorize"] = [gray] + samples
    composite, samples = ph.compose(pyramid, image, other, region, None, 2, 5, 2)
    studio["compose"] = [composite] + samples
    for app in flags:
        assert len(studio[app]) == 3 and studio[app][1].shape == (64, 64, 3)
        assert all(np.array_equal(c, mine) for c, mine in zip(cli[app], studio[app])), app
    # the others against the library function on the CLI's input tensor
    tensor = _load_images([paths["image"]], 64, "cpu")
    pairs = ((ph.generate(pyramid, image, "layer3", 2, 5, 1), sp.generate(pyramid, tensor, "layer3", 2, 5, 1)),
             (ph.relabel(pyramid, image, 2, None, 2, 5), sp.relabel(pyramid, tensor, 2, None, 2, 5)),
             (ph.sketch(pyramid, image, None, 2, 5, 0), sp.sketch_to_photo(pyramid, tensor, None, 2, 5, 0)))
    for got, expected in pairs:
        assert len(got) == 2 and all(np.array_equal(g, to_rgb_uint8(e)) for g, e in zip(got, expected))
    # the region matters: another region re-paints differently; the samples vary with the seed
    assert not np.array_equal(ph.repaint(pyramid, image, box_mask(70, 90, 40, 70, 0, 30), None, None, 1, 5, 0)[0],
                              ph.repaint(pyramid, image, region, None, None, 1, 5, 0)[0])
    assert not np.array_equal(ph.generate(pyramid, image, "layer3", 1, 6, 1)[0],
                              ph.generate(pyramid, image, "layer3", 1, 5, 1)[0])
    with pytest.raises(ValueError, match="region is empty"):
        ph.repaint(pyramid, image, np.zeros((70, 90), np.uint8), class_id=0)
    with pytest.raises(ValueError, match=r"class must be in 0\.\.2"):
        ph.generate(pyramid, image, class_id=3)
    with pytest.raises(ValueError, match="unknown level 'conv9'"):
        ph.generate(pyramid, image, "conv9", class_id=0)
    assert ph.levels(pyramid)[0] == "stem" and "layer4" in ph.spatial_levels(pyramid)


# ---- served page -----------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def editor_payload(handle_file, tmp_path, image, mask, name):
    """What the page sends for a brushed ImageEditor: the background and one RGBA stroke layer."""
    layer = np.zeros(image.shape[:2] + (4,), np.uint8)
    layer[mask > 0] = (255, 0, 255, 255)
    background = handle_file(png(image, tmp_path / f"{name}.png"))
    return {"background": background, "layers": [handle_file(png(layer, tmp_path / f"{name}_layer.png"))],
            "composite": background}


def patient_url_ok(url):
    """Gradio's launch check gives the first page 3 s; a busy CI machine may need more to render it."""
    import httpx
    try:
        return httpx.head(url, timeout=60).status_code == 200
    except httpx.HTTPError:
        return False


def test_served_tabs_answer_through_gradio_client(singan, consingan, pyramid, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    import gradio.networking
    monkeypatch.setattr(gradio.networking, "url_ok", patient_url_ok)
    from gradio_client import Client, handle_file

    from ganzoo.studio.app import build_app, runs_by_kind

    models = {"tiny_singan": singan, "other_singan": singan, "tiny_pyramid": pyramid, "tiny_consingan": consingan}
    assert runs_by_kind(models) == {"singan": ["tiny_singan", "other_singan"], "semantic_pyramid": ["tiny_pyramid"],
                                    "consingan": ["tiny_consingan"]}
    app = build_app(models)
    ids = [c.get("props", {}).get("elem_id") for c in app.config["components"]]
    ids = [i for i in ids if i]
    assert len(ids) == len(set(ids)) and {"singan-harmonize-editor", "singan-harmonize-run",
                                          "singan-harmonize-output", "singan-run-picker", "pyramid-editor",
                                          "consingan-harmonize-editor", "consingan-edit-editor"} <= set(ids)
    assert "singan-paint-editor" in ids and "consingan-paint-editor" not in ids  # ConSinGAN: no paint2image
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        ref, mask = photo(27, 40), box_mask(27, 40, 5, 15, 10, 25)
        value = editor_payload(handle_file, tmp_path, ref, mask, "ref")
        got = read(client.predict(value, 1, 7, 3, api_name="/tiny_singan_harmonize"))
        assert np.array_equal(got, sh.harmonize(singan, ref, mask, 1, seed=3))
        got = read(client.predict(value, 0, 7, 3, api_name="/tiny_consingan_harmonize"))
        assert np.array_equal(got, sh.harmonize(consingan, ref, mask, 0, seed=3)) and not np.array_equal(got, ref)
        gif = client.predict(1, 0.1, 0.9, 4, 10, 0, api_name="/other_singan_animation")[1]
        with Image.open(gif) as frames:
            assert frames.n_frames == 4
        empty = {**value, "layers": []}
        with pytest.raises(Exception, match="brush a mask on the image first"):
            client.predict(empty, 1, 7, 3, api_name="/tiny_singan_harmonize")
        (tmp_path / "junk.png").write_bytes(b"not an image")
        junk = handle_file(str(tmp_path / "junk.png"))
        with pytest.raises(Exception, match="the image is not a readable image"):
            client.predict({"background": junk, "layers": [], "composite": junk}, 1, 7, 3,
                           api_name="/tiny_singan_harmonize")
        image, region = photo(64, 64, seed=2), box_mask(64, 64, 0, 32, 0, 32)
        shown, gallery = client.predict(editor_payload(handle_file, tmp_path, image, region, "photo"), ph.DEFAULT,
                                        ph.DEFAULT, 1, 2, 5, api_name="/tiny_pyramid_sp_repaint")
        assert np.array_equal(read(shown), image) and len(gallery) == 2
        expected = ph.repaint(pyramid, image, region, None, None, 2, 5, 1)
        assert np.array_equal(read(gallery[1]["image"]), expected[1])
    finally:
        app.close()
