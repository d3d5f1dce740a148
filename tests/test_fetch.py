"""Fetching pretrained weights: the real resolve -> download -> verify -> move path, against a local HTTP
server reached through GANZOO_MIRROR (no test reaches the internet), and ganzoo-fetch."""
import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from ganzoo.backbones import fetch, manifest
from ganzoo.backbones.weights import WeightsNotFoundError, resolve
from ganzoo.cli.fetch import main as fetch_main
from ganzoo.download import DownloadError, mirrored

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path not in self.server.files:
            self.send_error(404)
            return
        body, declared = self.server.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        if declared != len(body):  # drop the connection mid-body
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A server on 127.0.0.1 and GANZOO_MIRROR pointing at its /mirror prefix; ``serve(url, body)``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("GANZOO_MIRROR", f"http://127.0.0.1:{httpd.server_port}/mirror")

    def serve(url, body, declared=None):
        path = mirrored(url).split(str(httpd.server_port), 1)[1]
        httpd.files[path] = (body, len(body) if declared is None else declared)
        return path

    httpd.serve = serve
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private, empty torch hub cache with fetching allowed; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANZOO_WEIGHTS", raising=False)
    monkeypatch.setenv("GANZOO_OFFLINE", "0")
    return tmp_path / "torch" / "hub" / "checkpoints"


def leftovers(folder):
    return [os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files]


@pytest.fixture
def hashed_entry(monkeypatch):
    """A manifest entry named by the torch hub convention (sha256 prefix in the file name) and its bytes."""
    body = os.urandom(3000)
    prefix = hashlib.sha256(body).hexdigest()[:8]
    entry = manifest._entry("tiny", f"tiny-{prefix}.pth", f"https://weights.example.org/zoo/tiny-{prefix}.pth",
                            prefix, "test")
    monkeypatch.setattr(manifest, "ENTRIES", manifest.ENTRIES + [entry])
    return entry, body


def test_suite_runs_offline():
    from ganzoo.download import offline
    assert os.environ["GANZOO_OFFLINE"] == "1" and offline()  # tests/conftest.py: no test reaches the internet


def test_mirror_replaces_scheme_and_host(monkeypatch):
    monkeypatch.setenv("GANZOO_MIRROR", "http://10.0.0.1:8080/weights/")
    assert mirrored("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth?x=1") == \
        "http://10.0.0.1:8080/weights/models/vgg19-dcbb9e9d.pth?x=1"
    monkeypatch.setenv("GANZOO_MIRROR", "10.0.0.1")
    with pytest.raises(DownloadError, match="not a URL"):
        mirrored("https://a/b")


def test_fetch_on_miss_through_the_mirror(server, cache, hashed_entry):
    entry, body = hashed_entry
    path = server.serve(entry["url"], body)
    assert path == f"/mirror/zoo/{entry['file']}"
    got = resolve(entry["file"])
    assert got == str(cache / entry["file"]) and open(got, "rb").read() == body
    assert leftovers(cache) == [entry["file"]]
    assert resolve(entry["file"]) == got and server.requests == [path]  # cached: no second request


def test_order_explicit_env_cache_before_fetch(server, cache, hashed_entry, tmp_path, monkeypatch):
    entry, body = hashed_entry
    server.serve(entry["url"], body)
    env = tmp_path / "env"
    env.mkdir()
    (env / entry["file"]).write_bytes(b"mine")
    monkeypatch.setenv("GANZOO_WEIGHTS", str(env))
    assert resolve(entry["file"]) == str(env / entry["file"])
    assert resolve(entry["file"], path=str(env)) == str(env / entry["file"])
    with pytest.raises(WeightsNotFoundError, match="nowhere"):  # an explicit path is never replaced by a fetch
        resolve(entry["file"], path=str(tmp_path / "nowhere"))
    assert server.requests == []


@pytest.mark.parametrize("failure", ["hash", "dropped", "404"])
def test_failed_download_leaves_nothing(server, cache, hashed_entry, failure):
    entry, body = hashed_entry
    if failure == "hash":
        server.serve(entry["url"], body[:-1] + b"!")
    elif failure == "dropped":
        server.serve(entry["url"], body[:1000], declared=len(body))
    expected = {"hash": "does not start with the expected " + entry["hash_prefix"],
                "dropped": "connection dropped after 1000 of 3000 bytes", "404": "HTTP 404"}[failure]
    with pytest.raises(DownloadError, match=expected) as err:
        resolve(entry["file"])
    assert "\n" not in str(err.value) and entry["file"] in str(err.value)
    assert leftovers(cache) == []
    assert len(server.requests) == 1


def test_offline_names_file_url_and_place(server, cache, monkeypatch):
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        resolve("vgg19-dcbb9e9d.pth")
    message = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in message and "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert str(cache) in message and "GANZOO_OFFLINE" in message and "\n" not in message
    assert server.requests == [] and not cache.exists()


def _resnet18_places365_file(num_classes=365):
    """A CSAIL-style ``.pth.tar`` (``state_dict``, ``module.`` keys) with ResNet18's names and shapes; each
    tensor a broadcast zero, so the file is a few kB."""
    import torchvision
    shapes = {k: v.shape for k, v in torchvision.models.resnet18(num_classes=num_classes).state_dict().items()}
    state = {f"module.{k}": torch.zeros(()).expand(shape) for k, shape in shapes.items()}
    import io
    buffer = io.BytesIO()
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": state}, buffer)
    return buffer.getvalue()


def test_verify_by_architecture(server, cache):
    from ganzoo.backbones.resnet18_places365 import ResNet18Places365
    entry = manifest.find("resnet18_places365")
    assert entry["hash_prefix"] is None and entry["verify"] == "resnet18_places365"
    server.serve(entry["url"], _resnet18_places365_file(num_classes=1000))  # an ImageNet head: wrong shape
    with pytest.raises(DownloadError, match=r"fc.weight \(1000, 512\) instead of \(365, 512\)") as err:
        ResNet18Places365()
    assert "\n" not in str(err.value) and leftovers(cache) == []
    server.serve(entry["url"], _resnet18_places365_file())
    net = ResNet18Places365()  # fetched, verified, loaded
    assert leftovers(cache) == [entry["file"]] and float(net.net.fc.weight.abs().sum()) == 0.0


def _zeros_file(path, net, drop=()):
    """A state-dict file with ``net``'s names and shapes (broadcast zeros: tiny on disk)."""
    torch.save({k: torch.zeros(()).expand(v.shape) for k, v in net.state_dict().items() if k not in drop}, path)
    return path


def test_segmenter_file_checked_against_its_network(server, cache, tmp_path):
    entry = manifest.find("deeplabv2_cocostuff")
    assert entry["verify"] == "deeplabv2_cocostuff" and entry["hash_prefix"] is None
    server.serve(entry["url"], b"<html>quota exceeded</html>")  # what a file host sends instead of weights
    with pytest.raises(DownloadError, match="failed verification"):
        resolve(entry["file"])
    assert leftovers(cache) == []
    build = fetch.ARCHITECTURES["deeplabv2_cocostuff"]
    net = build()
    fetch.check_architecture(_zeros_file(tmp_path / "ok.pth", net), build)
    with pytest.raises(ValueError, match=r"missing: base.aspp.c3.weight"):
        fetch.check_architecture(_zeros_file(tmp_path / "bad.pth", net, drop=("base.aspp.c3.weight",)), lambda: net)


def _tiny_vgg():
    """The key layout of the tiny Caffe VGG16 of test_backbones_places365 (2 channels, fc 8 -> 4 -> 4 -> 3)."""
    from torch import nn
    layers, cin = [], 3
    for block in (2, 2, 3, 3, 3):
        for _ in range(block):
            layers += [nn.Conv2d(cin, 2, 3), nn.ReLU()]
            cin = 2
        layers.append(nn.MaxPool2d(2))
    net = nn.Module()
    net.features = nn.Sequential(*layers)
    net.classifier = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 4), nn.ReLU(),
                                   nn.Dropout(), nn.Linear(4, 3))
    return net


def test_caffe_files_are_converted_on_fetch(server, cache, tmp_path, monkeypatch):
    from ganzoo.backbones import caffe
    from tests.test_backbones_places365 import CONV_NAMES, _tiny_vgg_caffe
    model, proto, mean, arrays = _tiny_vgg_caffe(tmp_path)
    entry = manifest.find("vgg16_places365")
    for role, path in (("caffemodel", model), ("prototxt", proto), ("mean", mean)):
        server.serve(entry["sources"][role], path.read_bytes())
    # the real check: a tiny net is not VGG16-Places365, nothing enters the cache
    with pytest.raises(DownloadError, match=r"features.0.weight \(2, 3, 3, 3\) instead of \(64, 3, 3, 3\)") as err:
        resolve("vgg16_places365.pth")
    assert "\n" not in str(err.value) and leftovers(cache) == []
    monkeypatch.setitem(fetch.ARCHITECTURES, "vgg16_places365", _tiny_vgg)
    path = resolve("vgg16_places365.pth")
    assert leftovers(cache) == ["vgg16_places365.pth"] and len(server.requests) == 6
    state = torch.load(path, weights_only=True)
    index = caffe.VGG16_CONV_INDICES[4]
    assert np.array_equal(state[f"features.{index}.weight"].numpy(), arrays[CONV_NAMES[4]][0])
    assert torch.allclose(state["meta.input_mean_bgr"], torch.tensor([100.0, 110.0, 120.0]))


def test_cli_list_fetch_offline(server, cache, hashed_entry, capsys):
    entry, body = hashed_entry
    server.serve(entry["url"], body)
    assert fetch_main(["--list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert set(rows) == {e["name"] for e in manifest.ENTRIES}
    assert rows["tiny"][:3] == ["tiny", entry["file"], "missing"] and rows["vgg19"][2] == "missing"
    assert fetch_main(["tiny", "--offline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "GANZOO_OFFLINE" in err and entry["url"] in err
    assert server.requests == []
    assert fetch_main(["tiny"]) == 0
    assert capsys.readouterr().out == f"tiny: {cache / entry['file']}\n"
    assert fetch_main(["--list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["tiny"] == ["tiny", entry["file"], str(cache / entry["file"]), "test"]
    assert fetch_main(["nosuch"]) == 2 and "unknown weights 'nosuch'" in capsys.readouterr().err
    assert fetch_main(["drn_d_105_cityscapes"]) == 2 and "go.yf.io" in capsys.readouterr().err


def test_cli_full_disk_exit_2_no_file(server, cache):
    """A write that the OS refuses (file-size limit, as a full disk) -> one line, exit 2, nothing left."""
    entry = manifest.find("vgg19")
    server.serve(entry["url"], os.urandom(300_000))

    def limit_file_size():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "fetch.py"), "vgg19"], env=env,
                         preexec_fn=limit_file_size, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: vgg19-dcbb9e9d.pth: download from http://127.0.0.1")
    assert "File too large" in out.stderr and out.stderr.count("\n") == 1
    assert leftovers(cache) == []
