"""ganzoo studio: the plain handlers on tiny runs, then the Gradio page served on 127.0.0.1."""
import os
import socket
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli.train import main as train_main
from ganzoo.registry import MODELS
from ganzoo.studio import handlers
from tests.test_singan_apps import CONFIG as SINGAN_CONFIG, TINY as SINGAN_TINY
from tests.test_spade_tools import save_ganzoo, tiny_cfg

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def spade(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder={"type": "spade_vae_encoder", "z_dim": 8, "ndf": 2, "input_size": 16})
    path = tmp_path_factory.mktemp("spade") / "vae.pt"
    save_ganzoo(MODELS.build(cfg).eval(), cfg, path)
    return ganzoo.load(str(path), device="cpu")


@pytest.fixture(scope="module")
def singan(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("singan") / "run")
    assert train_main([SINGAN_CONFIG, *SINGAN_TINY, "--run-dir", out]) == 0
    return ganzoo.load(out, device="cpu")


def scene():
    label = np.zeros((32, 32), np.int64)
    label[8:24, 4:20] = 2
    label[:4] = 255  # dontcare
    return label


def test_import_ganzoo_does_not_import_gradio():
    import subprocess
    code = "import sys, ganzoo, ganzoo.registry, ganzoo.studio.handlers; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "False"


def test_spade_synthesize_shapes_seeds_and_colour_maps(spade):
    images = handlers.spade_synthesize(spade, scene(), n=3, seed=5)
    assert len(images) == 3 and all(i.shape == (32, 32, 3) and i.dtype == np.uint8 for i in images)
    assert not np.array_equal(images[0], images[1])  # a seed per output
    again = handlers.spade_synthesize(spade, scene(), n=1, seed=5)[0]
    assert np.array_equal(again, images[0])  # reproducible
    assert not np.array_equal(handlers.spade_synthesize(spade, scene(), n=1, seed=6)[0], again)
    # the same as ganzoo-synthesize computes: model.sample with seed + k
    label = torch.from_numpy(scene())
    label[label == 255] = 3
    expected = spade.sample({"label": label[None, None]}, seed=5)[0]
    assert np.array_equal(handlers.to_rgb_uint8(expected), images[0])
    # a colour map in the palette gives the same output as the index map
    colours = np.asarray(handlers.spade_palette(spade), np.uint8)
    assert len(colours) == 4 and len(handlers.spade_class_names(spade)) == 4
    index = scene()
    index[index == 255] = 3
    assert np.array_equal(handlers.spade_synthesize(spade, colours[index], n=1, seed=5)[0], again)
    # a colour outside the palette is a one-line error; nearest snaps it (canvas brush edges)
    painted = colours[index].copy()
    painted[10, 10] = (colours[2].astype(int) + 3).astype(np.uint8)
    with pytest.raises(ValueError, match=r"colour \(\d+, \d+, \d+\) is not in the model's class palette") as err:
        handlers.spade_synthesize(spade, painted, n=1, seed=5)
    assert "\n" not in str(err.value)
    assert np.array_equal(handlers.spade_synthesize(spade, painted, n=1, seed=5, nearest=True)[0], again)
    with pytest.raises(ValueError, match="label value 9"):
        handlers.spade_synthesize(spade, np.full((8, 8), 9), n=1)


def test_singan_random_samples(singan):
    images = handlers.singan_random_samples(singan, n=2, seed=1)
    assert len(images) == 2 and images[0].shape == (27, 40, 3) and images[0].dtype == np.uint8
    assert not np.array_equal(images[0], images[1])
    assert np.array_equal(handlers.singan_random_samples(singan, n=2, seed=1)[0], images[0])
    assert not np.array_equal(handlers.singan_random_samples(singan, n=1, seed=2)[0], images[0])
    wide = handlers.singan_random_samples(singan, n=1, seed=1, scale_h=1.0, scale_w=1.5)[0]
    assert wide.shape[0] == 27 and wide.shape[1] > 50
    with pytest.raises(ValueError, match="need start_scale 0"):
        handlers.singan_random_samples(singan, n=1, seed=1, scale_w=1.5, start_scale=1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_page_answers_through_gradio_client(spade, singan, tmp_path):
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    from ganzoo.studio.app import build_app, read_label_upload

    Image.fromarray(scene().astype(np.uint8), mode="L").save(tmp_path / "scene.png")
    assert np.array_equal(read_label_upload(str(tmp_path / "scene.png")), scene())
    (tmp_path / "junk.png").write_bytes(b"not an image")
    app = build_app({"tiny_spade": spade, "tiny_singan": singan})
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        gallery, files = client.predict(handle_file(str(tmp_path / "scene.png")), 2, 5, None,  # no style image
                                       api_name="/tiny_spade_upload")
        assert len(gallery) == 2 and [g["caption"] for g in gallery] == ["seed 5", "seed 6"]
        names = sorted(os.path.basename(f) for f in files)
        assert names == ["label.png", "label_colour.png", "seed_5.png", "seed_6.png"]
        label_file = next(f for f in files if os.path.basename(f) == "label.png")
        expected_label = scene()
        expected_label[expected_label == 255] = 3
        assert np.array_equal(np.asarray(Image.open(label_file)), expected_label)
        got = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
        expected = handlers.spade_synthesize(spade, scene(), n=1, seed=5)[0]
        assert got.shape == (32, 32, 3) and np.abs(got.astype(int) - expected.astype(int)).max() <= 1
        samples = client.predict(3, 0, 0, 1.0, 1.0, api_name="/tiny_singan_samples")
        assert len(samples) == 3
        with pytest.raises(Exception, match="not a readable image"):
            client.predict(handle_file(str(tmp_path / "junk.png")), 1, 0, None, api_name="/tiny_spade_upload")
    finally:
        app.close()


def test_cli_names_runs_and_reports_a_missing_run(tmp_path, capsys):
    from ganzoo.cli.studio import build_parser, main, run_names

    args = build_parser().parse_args(["a/run", "b/run/"])
    assert (args.host, args.port, args.share, args.device) == ("127.0.0.1", 7860, False, "auto")
    assert run_names(["a/run", "b/run/"]) == ["run", "run-2"]
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "run " in err and "nowhere not found" in err and err.count("\n") == 1


def test_label_tab_helpers_palette_style_downloads_and_limits(spade, tmp_path):
    from ganzoo.data import palettes
    from ganzoo.studio.label_tab import canvas_scale, read_label_upload

    # every model with synthesize(seg, ...) gets the label painter; SinGAN's synthesize(n, ...) does not
    assert handlers.synthesizes_from_labels(spade) and handlers.is_multimodal(spade)
    assert not handlers.synthesizes_from_labels(object())
    # Cityscapes shares black among labels 0-4: the canvas paints each with its own colour
    city = handlers.paint_palette(palettes.palette("cityscapes"))
    assert len(set(city)) == 35 and city[0] == (0, 0, 0) and city[7] == (128, 64, 128)
    assert handlers.spade_class_names(spade, ["sky", "tree"])[:4] == ["sky", "tree", "class 2", "dontcare"]
    assert canvas_scale(32, 32) == 8 and canvas_scale(256, 512) == 1
    # a style image: the encoder's code; the same image twice gives the same picture, another style another
    style = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    a = handlers.spade_synthesize(spade, scene(), n=1, seed=1, style=style)[0]
    assert np.array_equal(a, handlers.spade_synthesize(spade, scene(), n=1, seed=1, style=style)[0])
    label = torch.from_numpy(scene())
    label[label == 255] = 3
    _, seg = spade.condition({"label": label[None, None]}, torch.device("cpu"))
    expected = spade.synthesize(seg, style=handlers.style_tensor(spade, style), seed=1)[0]
    assert np.array_equal(a, handlers.to_rgb_uint8(expected))
    # downloads: the label map the model got, its colours and one file per seed
    paths = handlers.save_results(str(tmp_path / "out"), label.numpy(), handlers.spade_palette(spade), [a, a], 7)
    assert [os.path.basename(p) for p in paths] == ["label.png", "label_colour.png", "seed_7.png", "seed_8.png"]
    assert np.array_equal(np.asarray(Image.open(paths[0])), label.numpy())
    # uploads above the size limit, or not images, are one-line messages
    Image.fromarray(scene().astype(np.uint8), mode="L").save(tmp_path / "scene.png")
    with pytest.raises(ValueError, match=r"scene.png is .* MB, more than the studio takes"):
        read_label_upload(str(tmp_path / "scene.png"), max_bytes=10)
    with pytest.raises(ValueError, match="more than the studio takes"):
        read_label_upload(str(tmp_path / "scene.png"), max_pixels=100)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt is not a readable image"):
        read_label_upload(str(tmp_path / "notes.txt"))


def test_every_queued_event_shares_one_model_slot(spade, singan):
    pytest.importorskip("gradio")
    from ganzoo.studio.app import MODEL_QUEUE, build_app

    plain = MODELS.build(tiny_cfg()).eval()  # no VAE: one output, no style image
    plain.config = {"model": tiny_cfg()}
    app = build_app({"a": spade, "b": singan, "c": plain})
    queued = [fn for fn in app.fns.values() if fn.queue]
    assert len(queued) > 5 and {fn.concurrency_id for fn in queued} == {MODEL_QUEUE}
    assert {fn.concurrency_limit for fn in queued} <= {1, "default"}
