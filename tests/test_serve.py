"""The HTTP service: every endpoint, every error code, concurrency, and no server paths in replies."""
import io
import json
import re
import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError
from cnnlab.tasks.classify import ClassifyTask

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("fastapi_offline", reason="the serve extra (fastapi-offline) is not installed")
pytest.importorskip("python_multipart", reason="the serve extra (python-multipart) is not installed")
from fastapi.testclient import TestClient  # noqa: E402  (after the skips)

from cnnlab.serve import create_app, run, uploads  # noqa: E402
from cnnlab.serve.server import listen_socket, make_server  # noqa: E402
from cnnlab.serve.uploads import Limits  # noqa: E402


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A lecture_cnn checkpoint for 8x8 digits, random weights with non-trivial BN statistics."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="lecture_cnn", data="digits")
    task = ClassifyTask([str(i) for i in range(10)], [0.3], [0.4], (1, 8, 8))
    model = task.build_model(cfg).train()
    with torch.no_grad():
        for _ in range(3):
            model(task.prepare(torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)))
    folder = tmp_path_factory.mktemp("run") / "digits"
    return save_checkpoint({"model": model.state_dict(), "task": task.state(),
                            "config": cfg.to_dict()}, folder / "best.pt")


@pytest.fixture(scope="module")
def client(checkpoint):
    with TestClient(create_app([checkpoint], device="cpu")) as c:
        yield c


@pytest.fixture(scope="module")
def digits_png():
    """Real digits from scikit-learn's set, as PNG bytes, 8x8 gray."""
    images = cnnlab.load_dataset("digits", "test").images[:8]  # (8, 1, 8, 8) uint8
    return [png(img[0].numpy()) for img in images]


def png(array: np.ndarray, format="PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=format)
    return buf.getvalue()


def post(client, path, data: bytes, name="seven.png", **fields):
    return client.post(path, files={"file": (name, data, "image/png")}, data=fields)


ERRORS: list[str] = []  # every error body seen, checked for paths and tracebacks at the end


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and "\n" not in body["detail"]
    ERRORS.append(response.text)
    return body["detail"]


# ---------------------------------------------------------------------- endpoints
def test_health_models_and_kernels(client):
    assert client.get("/healthz").json() == {"status": "ok", "version": cnnlab.__version__, "models": ["digits"]}
    (m,) = client.get("/v1/models").json()
    assert (m["name"], m["task"], m["model"], m["runtime"]) == ("digits", "classify", "lecture_cnn", "pytorch")
    assert m["classes"] == [str(i) for i in range(10)] and m["input_shape"] == [1, 8, 8]
    assert m["options"] == {"topk": 5} and m["explain"] is True and m["source"] == "best.pt"
    kernels = client.get("/v1/kernels").json()
    assert kernels["sharpen"] == [[0, -1, 0], [-1, 5, -1], [0, -1, 0]] and "sobel-x" in kernels


def test_get_routes_answer_head(client):
    for path in ("/", "/healthz", "/v1/models", "/v1/kernels"):
        assert client.head(path).status_code == 200, path


def test_predict_matches_the_python_api(client, checkpoint, digits_png, tmp_path):
    path = tmp_path / "d.png"
    path.write_bytes(digits_png[0])
    expected = cnnlab.predict(cnnlab.load(checkpoint, device="cpu"), [path], topk=5)[0]["top"]
    r = post(client, "/v1/predict", digits_png[0], name="../../secret/d.png")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "digits" and body["task"] == "classify" and body["image"] == "d.png"
    assert body["top"] == expected and len(body["top"]) == 5
    assert post(client, "/v1/predict", digits_png[0], model="digits", topk="3").json()["top"] == expected[:3]
    assert post(client, "/v1/predict", digits_png[0], options=json.dumps({"topk": 2})).json()["top"] == expected[:2]


def test_page_static_files_and_offline_docs(client):
    page = client.get("/")
    scripts = re.findall(r'<script src="(/static/[^"]+\.js)"', page.text)  # plain JS files by view
    assert page.status_code == 200 and "/static/main.js" in scripts
    for asset in (*scripts, "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "https://" not in page.text + "".join(client.get(s).text for s in scripts)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text and "https://" not in docs.text
    assets = re.findall(r'(?:src|href)="(/[^"]+swagger-ui[^"]*)"', docs.text)
    assert len(assets) == 2 and all(client.get(url).status_code == 200 for url in assets), assets
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/v1/convolve", "/v1/models", "/healthz"} <= set(spec["paths"])


def test_explain_returns_images_per_layer(client, digits_png):
    r = post(client, "/v1/explain", digits_png[1], method="gradcam")
    assert r.status_code == 200, r.text
    body = r.json()
    top1 = post(client, "/v1/predict", digits_png[1]).json()["top"][0]
    assert body["prediction"][0]["class"] == top1["class"] == body["cam"]["class"]
    assert body["cam"]["method"] == "gradcam" and body["cam"]["overlay"].startswith("data:image/png;base64,")
    assert body["layers"] and all(L["image"].startswith("data:image/png") and len(L["shape"]) == 3
                                  for L in body["layers"])
    assert {"feature_maps", "filters", "cam"} <= set(body["figures"])
    assert post(client, "/v1/explain", digits_png[1], method="saliency").json()["cam"]["layer"] == "input"


def test_convolve_matches_the_python_api(client, digits_png):
    image = np.asarray(Image.open(io.BytesIO(digits_png[2])))
    r = client.post("/v1/convolve", files={"file": ("d.png", digits_png[2], "image/png")},
                    data={"kernel": ["edge", "0,0,0;0,2,0;0,0,0"]})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = cnnlab.convolve(image, ["edge", "0,0,0;0,2,0;0,0,0"], out=None)["feature_maps"]
    for got, want in zip(body["feature_maps"], expected):
        assert got["shape"] == [8, 8] and got["image"].startswith("data:image/png")
        assert got["min"] == pytest.approx(want["feature_map"].min()) and got["max"] == pytest.approx(want["feature_map"].max())
    assert body["feature_maps"][1]["max"] == pytest.approx(2 * int(image.max()) / 255)
    strided = client.post("/v1/convolve", files={"file": ("d.png", digits_png[2])}, data={"stride": "2", "padding": "0"})
    assert strided.json()["feature_maps"][0]["shape"] == [3, 3]  # (8 - 3 + 0)/2 + 1


def test_convolve_downscales_large_images(client):
    big = png(np.random.default_rng(0).integers(0, 256, (600, 1200), dtype=np.uint8))
    body = post(client, "/v1/convolve", big).json()
    assert body["input"]["resized_from"] == [600, 1200] and body["input"]["shape"] == [256, 512]


# ---------------------------------------------------------------------- errors
def test_client_errors_have_codes_and_one_line_reasons(client, digits_png):
    assert "'nope'" in error(post(client, "/v1/predict", digits_png[0], model="nope"), 404)
    assert "photo.jpg: not an image" in error(post(client, "/v1/predict", b"hello world", name="photo.jpg"), 415)
    truncated = png(np.zeros((64, 64), np.uint8))[:60]
    assert "truncated" in error(post(client, "/v1/predict", truncated, name="t.png"), 415)
    assert "empty" in error(post(client, "/v1/predict", b"", name="e.png"), 422)
    assert "file" in error(client.post("/v1/predict", data={"model": "digits"}), 422)
    assert "options" in error(post(client, "/v1/predict", digits_png[0], options="{topk"), 422)
    assert "beam" in error(post(client, "/v1/predict", digits_png[0], options='{"beam": 3}'), 422)
    assert "options.topk 'x': expected a whole number" in error(post(client, "/v1/predict", digits_png[0],
                                                                     options='{"topk": "x"}'), 422)
    assert "file options" in error(post(client, "/v1/predict", digits_png[0], options='{"out": "/etc"}'), 422)
    error(post(client, "/v1/predict", digits_png[0], topk="0"), 422)
    assert "unknown layer" in error(post(client, "/v1/explain", digits_png[0], layer="fc9"), 422)
    assert "unknown class" in error(post(client, "/v1/explain", digits_png[0], target_class="cat"), 422)
    error(post(client, "/v1/explain", digits_png[0], method="magic"), 422)
    assert "unknown kernel 'blurry'" in error(post(client, "/v1/convolve", digits_png[0], kernel="blurry"), 422)
    error(post(client, "/v1/convolve", digits_png[0], stride="0"), 422)
    error(client.get("/v1/nothing"), 404)


def test_size_and_pixel_limits(checkpoint, digits_png):
    limits = Limits(max_upload_bytes=20_000, max_pixels=100 * 100)
    with TestClient(create_app([f"small={checkpoint}"], device="cpu", limits=limits)) as c:
        assert post(c, "/v1/predict", digits_png[0], model="small").status_code == 200
        assert "20,000 bytes" in error(post(c, "/v1/predict", b"x" * 30_000), 413)
        assert "101x100" in error(post(c, "/v1/predict", png(np.zeros((100, 101), np.uint8)), name="w.png"), 413)
        chunked = c.post("/v1/predict", content=iter([b"x" * 8_000] * 4),  # no Content-Length
                         headers={"content-type": "multipart/form-data; boundary=b"})
        assert "20,000 bytes" in error(chunked, 413)


def test_internal_errors_hide_tracebacks_and_paths(checkpoint):
    app = create_app([checkpoint], device="cpu")

    @app.get("/boom")
    def boom():
        raise RuntimeError(f"failed reading {checkpoint}")

    with TestClient(app, raise_server_exceptions=False) as c:
        assert "internal error" in error(c.get("/boom"), 500)


def test_a_bug_is_a_500_even_when_options_were_sent(checkpoint, digits_png, monkeypatch):
    """Only a CnnlabError (and a malformed request) is the client's fault: a task's ValueError is a bug."""
    def broken(*args, **options):
        raise ValueError("a bug in the task")

    with TestClient(create_app([checkpoint], device="cpu"), raise_server_exceptions=False) as c:
        monkeypatch.setattr(cnnlab.api, "predict", broken)
        assert "internal error" in error(post(c, "/v1/predict", digits_png[0], options='{"topk": 2}'), 500)
        assert "internal error" in error(post(c, "/v1/predict", digits_png[0], topk="2"), 500)


def test_onnx_models_predict_but_do_not_explain(checkpoint, digits_png, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    pytest.importorskip("onnxscript", reason="onnxscript not installed")
    exported = cnnlab.export(checkpoint, out=tmp_path / "digits.onnx", device="cpu")
    with TestClient(create_app([checkpoint, exported["path"]], device="cpu")) as c:
        names = [m["name"] for m in c.get("/v1/models").json()]
        assert names == ["digits", "digits-2"]
        torch_top = post(c, "/v1/predict", digits_png[3], model="digits").json()["top"]
        onnx_top = post(c, "/v1/predict", digits_png[3], model="digits-2").json()["top"]
        assert [t["class"] for t in onnx_top] == [t["class"] for t in torch_top]
        assert onnx_top[0]["prob"] == pytest.approx(torch_top[0]["prob"], abs=1e-4)
        assert "onnxruntime" in error(post(c, "/v1/explain", digits_png[3], model="digits-2"), 422)
    with TestClient(create_app([checkpoint], device="cpu", runtime="onnxruntime")) as c:  # export at start
        assert c.get("/v1/models").json()[0]["runtime"] == "onnxruntime"
        fast_top = post(c, "/v1/predict", digits_png[3]).json()["top"]
        assert [t["class"] for t in fast_top] == [t["class"] for t in torch_top]
        assert post(c, "/v1/explain", digits_png[3]).status_code == 200  # explain keeps PyTorch


def test_deep_options_and_escape_codes_are_client_errors(client, digits_png):
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested too deeply" in error(post(client, "/v1/predict", digits_png[0], options=deep), 422)
    deep = '{"topk": ' * 5_000 + "1" + "}" * 5_000
    assert "nested too deeply" in error(post(client, "/v1/predict", digits_png[0], options=deep), 422)
    painted = json.dumps({"\x1b[31mred\nline\x7f": 1})
    assert "red" in error(post(client, "/v1/predict", digits_png[0], options=painted), 422)
    named = error(post(client, "/v1/predict", b"not an image", name="\x1b[31mevil.png"), 415)
    assert named.startswith("evil.png: not an image")


def test_no_paths_or_tracebacks_in_any_error(checkpoint, tmp_path):
    assert ERRORS, "the error tests ran first"
    for text in ERRORS:
        assert "Traceback" not in text and "/tmp" not in text and str(checkpoint.parent) not in text
        assert "cnnlab-serve" not in text and str(tmp_path.parent) not in text
        detail = json.loads(text)["detail"]
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]|\[\d+m", detail), detail  # no terminal escape codes


# ---------------------------------------------------------------------- concurrency
def test_concurrent_requests_equal_sequential_ones(client, digits_png):
    """8 threads share one model, predicting while another thread explains (explain hooks the
    model's layers): every answer equals the one the same request gets alone."""
    sequential = [post(client, "/v1/predict", d).json() for d in digits_png]
    explained = post(client, "/v1/explain", digits_png[4]).json()
    results, failures = {}, []

    def predict(i):
        try:
            for _ in range(3):
                results.setdefault(i, []).append(post(client, "/v1/predict", digits_png[i]).json())
        except Exception as e:  # surfaced by the assertion below
            failures.append(e)

    def explain():
        results["explain"] = post(client, "/v1/explain", digits_png[4]).json()

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(len(digits_png))]
    threads.append(threading.Thread(target=explain))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    for i, expected in enumerate(sequential):
        assert results[i] == [expected] * 3
    assert results["explain"]["layers"] == explained["layers"]
    assert results["explain"]["cam"]["overlay"] == explained["cam"]["overlay"]


# ---------------------------------------------------------------------- large uploads
def test_large_uploads_are_scaled_down_before_the_model(client, monkeypatch):
    """A 3000x2000 JPEG reaches predict and explain at 1024 px on its longer side, and is never
    decoded at full size (Pillow's draft decodes it at a reduced scale)."""
    decoded = []

    def spy(*args, **kwargs):
        image = read_image(*args, **kwargs)
        decoded.append(tuple(image.shape[-2:]))
        return image

    read_image = uploads.read_image
    monkeypatch.setattr(uploads, "read_image", spy)
    y, x = np.mgrid[0:2000, 0:3000]
    photo = png(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8), format="JPEG")
    resized = {"from": [2000, 3000], "to": [683, 1024]}
    r = post(client, "/v1/predict", photo, name="big.jpg")
    assert r.status_code == 200 and r.json()["resized"] == resized and r.json()["image"] == "big.jpg", r.text
    r = post(client, "/v1/explain", photo, name="big.jpg")
    assert r.status_code == 200 and r.json()["resized"] == resized, r.text
    assert all(max(size) <= 1024 for size in decoded), decoded
    assert "resized" not in post(client, "/v1/predict", png(np.zeros((600, 900), np.uint8))).json()


def test_decodes_are_bounded_under_load(checkpoint, digits_png, monkeypatch):
    """6 clients at once, at most 2 uploads decoding at a time (memory stays flat)."""
    busy, peak, lock = 0, [], threading.Lock()

    def slow_read(*args, **kwargs):
        nonlocal busy
        with lock:
            busy += 1
            peak.append(busy)
        time.sleep(0.2)
        with lock:
            busy -= 1
        return read_image(*args, **kwargs)

    read_image = uploads.read_image
    monkeypatch.setattr(uploads, "read_image", slow_read)
    with TestClient(create_app([checkpoint], device="cpu", limits=Limits(max_decodes=2))) as c:
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(post(c, "/v1/predict", digits_png[0]).status_code))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert statuses == [200] * 6 and max(peak) == 2, (statuses, peak)


# ---------------------------------------------------------------------- uvicorn: slow clients, bad settings
@contextmanager
def served(app, **settings):
    """``app`` under uvicorn on a free loopback port, in a thread; yields the port."""
    sock = listen_socket("127.0.0.1", 0)
    server = make_server(app, log_level="warning", **settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_reply(sock: socket.socket) -> bytes:
    """Everything until the service closes the connection (socket timeout: 5 s)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_time_out_and_connections_are_limited(checkpoint):
    app = create_app([checkpoint], device="cpu", limits=Limits(body_timeout=0.5))
    with served(app, header_timeout=0.5, limit_concurrency=2) as port:
        with connect(port) as c:
            c.sendall(b"HEAD /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            head, _, body = read_reply(c).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and body == b""
        with connect(port) as c:  # headers trickled, then nothing: disconnected
            c.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            started = time.monotonic()
            assert read_reply(c) == b"" and time.monotonic() - started < 3
        with connect(port) as c:  # body trickled, then nothing: 408
            c.sendall(b"POST /v1/predict HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n"
                      b"content-type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
            reply = read_reply(c)
            assert reply.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in reply, reply
        with connect(port) as idle, connect(port) as c:  # 2 connections open: the limit
            time.sleep(0.1)
            c.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert read_reply(c).startswith(b"HTTP/1.1 503")


def test_bad_limits_and_ports_fail_in_one_line(checkpoint, capsys):
    from cnnlab.cli import main

    assert main(["serve", str(checkpoint), "--port", "99999"]) == 2
    assert capsys.readouterr().err.strip() == "cnnlab: error: --port 99999: expected 1..65535"
    assert main(["serve", str(checkpoint), "--max-upload-mb", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "cnnlab: error: --max-upload-mb -1: expected a number above 0"
    for bad in (dict(max_upload_bytes=0), dict(max_pixels=-5), dict(max_image_side=0), dict(body_timeout=0)):
        with pytest.raises(CnnlabError, match="expected a number above 0"):
            Limits(**bad)
    with pytest.raises(CnnlabError, match="--port 0: expected 1..65535"):
        run([checkpoint], port=0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(checkpoint), "--port", str(port)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"cnnlab: error: --port {port}: 127.0.0.1:{port} is already in use") and "\n" not in err


# ---------------------------------------------------------------------- command line
def test_cli_serve_defaults_to_loopback_and_fails_in_one_line(capsys):
    from cnnlab.cli import build_parser, main

    a = build_parser().parse_args(["serve", "runs/x/best.pt"])
    assert (a.host, a.port) == ("127.0.0.1", 8000)
    assert main(["serve", "no/such/best.pt"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab: error:") and "\n" not in err


def test_page_script_parses():
    """The page's JavaScript is valid (a syntax error would leave the page blank)."""
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (used only to syntax-check the page's scripts)")
    import cnnlab.serve

    scripts = sorted((Path(cnnlab.serve.__file__).parent / "static").glob("*.js"))
    assert len(scripts) > 1
    for script in scripts:
        result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------- what the page explains, per task
@pytest.fixture(scope="module")
def task_client(tmp_path_factory):
    """The service over small random-weight checkpoints of segmentation, detection and captioning."""
    import web_checkpoints  # tests/web_checkpoints.py

    folder = tmp_path_factory.mktemp("tasks")
    models = [web_checkpoints.segmenter(folder), web_checkpoints.detector(folder), web_checkpoints.captioner(folder)]
    with TestClient(create_app(models, device="cpu")) as c:
        yield c


def shapes_png(size=(48, 40)) -> bytes:
    y, x = np.mgrid[0:size[1], 0:size[0]]
    rgb = np.full((size[1], size[0], 3), 200, np.uint8)
    rgb[(x - 14) ** 2 + (y - 14) ** 2 < 81] = (220, 40, 40)
    rgb[20:34, 26:42] = (40, 70, 220)
    return png(rgb)


def test_caption_attention_per_word_is_the_decoders_own(task_client):
    """predict with attention returns one (h, w) grid per word: the weights the decoder put on the
    encoder's grid when it wrote that word, the same as teacher forcing those words gives."""
    from cnnlab.data.caption_text import START_ID

    body = post(task_client, "/v1/predict", shapes_png(), model="captions",
                options=json.dumps({"beam": 1, "attention": True})).json()
    words, (h, w) = body["words"], body["grid"]
    assert body["caption"] == " ".join(words) and len(body["word_attention"]) == len(words) > 0
    served = task_client.app.state.models["captions"]
    task, model = served.task, served.model.model
    img = cnnlab.images.read_image(shapes_png(), channels=3)
    ids = torch.tensor([[START_ID, *[task.vocab.index()[x] for x in words]]])
    with torch.no_grad():
        x = task.prepare(cnnlab.images.resize(img, task.input_shape[1:])[None])
        _, alphas = model.eval()(x, ids)  # (1, T, h*w): teacher forcing on the caption's own words
    assert (h, w) == task.feature_grid(model, cnnlab.images.resize(img, task.input_shape[1:])[None])
    got = np.array(body["word_attention"])  # (T, h, w)
    assert got.shape == (len(words), h, w) and np.allclose(got.sum((1, 2)), 1, atol=1e-4)
    assert np.allclose(got, alphas[0, :len(words)].reshape(-1, h, w).numpy(), atol=1e-5)  # row t wrote word t
    plain = post(task_client, "/v1/predict", shapes_png(), model="captions", options=json.dumps({"beam": 1})).json()
    assert "word_attention" not in plain and plain["caption"] == body["caption"]


def test_mask_probabilities_and_the_iou_of_an_uploaded_truth(task_client):
    import base64

    from cnnlab.tasks.segment import confusion_matrix, segmentation_metrics

    image = shapes_png()
    r = task_client.post("/v1/mask", files={"file": ("s.png", image, "image/png")}, data={"model": "scenes"}).json()
    ids, prob = (np.asarray(Image.open(io.BytesIO(base64.b64decode(r[k].split(",")[1])))) for k in ("mask", "probability"))
    served = task_client.app.state.models["scenes"]
    img = cnnlab.images.read_image(image, channels=3)
    with torch.no_grad():
        scores = served.predictor.logits(cnnlab.images.resize(img, served.task.input_shape[1:])[None]).float()
        p = torch.nn.functional.interpolate(scores, size=(40, 48), mode="bilinear", align_corners=False)[0].softmax(0)
    assert np.array_equal(ids, p.argmax(0).numpy())
    assert np.abs(prob / 255 - p.max(0).values.numpy()).max() <= 0.5 / 255 + 1e-6  # 8-bit probabilities

    truth = np.zeros((40, 48), np.uint8)
    truth[5:24, 5:24], truth[20:34, 26:42] = 1, 2
    truth[0, :] = 255  # unlabelled: left out
    t = task_client.post("/v1/mask", files={"file": ("s.png", image, "image/png"),
                                            "truth": ("s_mask.png", png(truth), "image/png")},
                         data={"model": "scenes"}).json()["truth"]
    want = segmentation_metrics(confusion_matrix(torch.from_numpy(ids.copy()).long().flatten(),
                                                 torch.from_numpy(truth).long().flatten(), 3), served.task.classes)
    assert t["per_class"] == want["per_class"] and t["miou"] == want["miou"] and t["ignored"] == 48
    keep = truth != 255  # by hand: IoU of class k = |pred k and truth k| / |pred k or truth k|
    for k, name in enumerate(served.task.classes):
        union = ((ids == k) | (truth == k))[keep].sum()
        assert t["per_class"][name]["iou"] == (None if union == 0 else
                                               round(float(((ids == k) & (truth == k))[keep].sum() / union), 6))
    # a half-size mask of the same aspect is resized; another aspect, a wrong id, a non-image: words
    half = task_client.post("/v1/mask", files={"file": ("s.png", image, "image/png"),
                                               "truth": ("half.png", png(truth[::2, ::2]), "image/png")},
                            data={"model": "scenes"}).json()["truth"]
    assert half["resized"] is True
    for data, words in ((png(truth[:10]), "another aspect ratio"), (png(truth + 3), "class ids"),
                        (b"hello", "not an image")):
        reply = task_client.post("/v1/mask", files={"file": ("s.png", image, "image/png"),
                                                    "truth": ("m.png", data, "image/png")}, data={"model": "scenes"})
        assert words in error(reply, 415 if data == b"hello" else 422)
