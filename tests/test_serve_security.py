"""The web app refuses what it must (4xx, a JSON error, nothing written): paths out of the root, oversize
uploads, non-images, cross-site writes; and never shows a stack trace."""

import http.client
import io
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from _serve import live_server, snapshot
from shapekit.serve import create_app
from shapekit.synthetic import make_landmark_dataset


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A secret file and a dataset outside the workspace root, which symlinks in the root point to."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.txt").write_text("top secret\n")
    make_landmark_dataset(folder / "elsewhere", n_images=2, seed=5)
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory, outside):
    root = tmp_path_factory.mktemp("root")
    make_landmark_dataset(root / "specimens", n_images=3, seed=4)
    (root / ".env").write_text("TOKEN=abc\n")
    os.symlink(outside / "secret.txt", root / "secret-link.txt")
    os.symlink(outside, root / "outside-dir")
    os.symlink(outside / "elsewhere", root / "linked-dataset")
    os.symlink(outside / "elsewhere" / "images" / "specimen_0000.png", root / "specimens" / "images" / "zz-escape.png")
    return root


@pytest.fixture(scope="module")
def app(root):
    return create_app(root, max_upload_mb=1, max_megapixels=4)


@pytest.fixture
def client(app):
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


def _png(width=64, height=48, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _refused(answer, *statuses):
    assert answer.status_code in statuses, (answer.status_code, answer.text)
    body = answer.json()
    assert set(body) == {"error"} and body["error"], body
    assert "Traceback" not in answer.text and "top secret" not in answer.text
    return body["error"]


ESCAPES = [
    ("/api/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 400),          # URL-encoded ../
    ("/api/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400),           # ../ with encoded slashes
    ("/api/files/specimens/..%2f..%2f..%2fetc/passwd", 400),
    ("/api/files/%252e%252e%252fsecret.txt", (400, 404)),         # double-encoded (decoded once or twice)
    ("/api/files/%2fetc%2fpasswd", 400),                          # absolute path
    ("/api/files//etc/passwd", 400),
    ("/api/files/specimens%5c..%5c..%5csecret.txt", 400),         # backslashes
    ("/api/files/specimens/landmarks.tps%00.png", 400),           # NUL byte
    ("/api/files/secret-link.txt", 403),                          # symlink to a file outside
    ("/api/files/outside-dir/secret.txt", 403),                   # symlinked folder outside
    ("/api/files/specimens/images/zz-escape.png", 403),           # symlinked image outside
    ("/api/files/.env", 403),                                     # hidden files
    ("/api/datasets/linked-dataset", 403),
    ("/api/datasets/%2e%2e", 400),
    ("/api/datasets/specimens/predictions/%2e%2e%2f%2e%2e%2fsecret.txt", 400),
]


@pytest.mark.parametrize("url, status", ESCAPES)
def test_paths_out_of_the_root_are_refused(client, url, status):
    _refused(client.get(url), *(status if isinstance(status, tuple) else (status,)))


def test_raw_dot_dot_paths_are_refused(app):
    """http.client sends '..' as it is (httpx and browsers would normalise it away before sending)."""
    with live_server(app) as base:
        host, port = base.removeprefix("http://").split(":")
        for url in ("/api/files/../../../../etc/passwd", "/api/files/specimens/../../secret.txt",
                    "/api/datasets/specimens/../../outside"):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("GET", url)
            answer = connection.getresponse()
            text = answer.read().decode()
            assert 400 <= answer.status < 500 and "error" in text and "root:" not in text, (url, answer.status, text)


def test_a_dataset_does_not_list_images_that_lead_out(client):
    info = client.get("/api/datasets/specimens").json()
    assert [im["name"] for im in info["images"]] == [f"specimen_000{k}.png" for k in range(3)]
    assert any("zz-escape.png" in w for w in info["warnings"])
    assert "linked-dataset" not in {d["path"] for d in client.get("/api/datasets").json()}


def test_models_must_be_model_files_under_the_root(client, root):
    before = snapshot(root)
    for model, status in (("../outside/model.ckpt", 400), ("secret-link.txt", 403), ("specimens/landmarks.tps", 400),
                          ("/etc/passwd", 400), ("shipped:nothing", 404)):
        _refused(client.post("/api/predict", data={"model": model}, files={"file": ("a.png", _png(), "image/png")}),
                 status)
    assert snapshot(root) == before


def test_uploads_are_checked_by_content_and_size(client, root):
    before = snapshot(root)
    model = {"model": "shipped:segment"}
    cases = [
        (("photo.png", b"MZ\x90\x00 this is a program, not a picture" * 10, "image/png"), 400, "not an image"),
        (("photo.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg"), 400, "not an image"),
        (("photo.gif", _gif(), "image/gif"), 400, "not accepted"),
        (("huge.png", _png(3000, 2000, "1"), "image/png"), 400, "megapixels"),           # 6 MP > 4 MP limit
        (("big.png", os.urandom(1_200_000), "image/png"), 413, "upload limit"),          # 1.2 MB > 1 MB
    ]
    for upload, status, words in cases:
        assert words in _refused(client.post("/api/predict", data=model, files={"file": upload}), status)
    assert snapshot(root) == before


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


def test_streamed_oversize_body_without_length_is_cut_off(app, root):
    """A chunked body has no Content-Length: the limit is enforced while it streams in."""
    import httpx

    before = snapshot(root)
    chunk = b"x" * 65536

    def body():
        for _ in range(40):  # 2.5 MB against a 1 MB limit
            yield chunk

    with live_server(app) as base:
        answer = httpx.post(f"{base}/api/datasets/specimens/annotations", content=body(),
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 413 and "upload limit" in answer.json()["error"]
    assert snapshot(root) == before


def test_saves_cannot_leave_the_root(client, root):
    before = snapshot(root)
    points = [[1.0, 1.0]] * 7
    for dataset, name, status in (("%2e%2e", "specimen_0000.png", 400), ("linked-dataset", "specimen_0000.png", 403),
                                  ("outside-dir/elsewhere", "specimen_0000.png", 403),
                                  ("specimens", "zz-escape.png", 403), ("specimens", "../../x.png", 400)):
        _refused(client.post(f"/api/datasets/{dataset}/annotations",
                             json={"images": [{"name": name, "points": points}]}), status)
    assert snapshot(root) == before


def test_cross_site_writes_and_foreign_hosts_are_refused(client, root):
    before = snapshot(root)
    image = client.get("/api/datasets/specimens").json()["images"][0]
    body = {"images": [{"name": image["name"], "points": image["points"]}]}
    _refused(client.post("/api/datasets/specimens/annotations", json=body, headers={"Origin": "http://evil.example"}),
             403)
    # DNS rebinding: a page on another name that resolves to 127.0.0.1 sends its own Host header.
    assert "evil.example" in _refused(client.get("/api/health", headers={"Host": "evil.example:80"}), 400)
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    assert snapshot(root) == before


def test_internal_errors_show_no_stack_trace(app, client):
    class Broken:
        name, web_kind = "broken", "landmarks"

        def predict_image(self, *args, **kwargs):
            raise RuntimeError("secret internals at /home/someone/.cache")

    app.state.models.register("test:broken", Broken(), None)
    error = _refused(client.post("/api/predict", data={"model": "test:broken"},
                                 files={"file": ("a.png", _png(), "image/png")}), 500)
    assert "secret" not in error and "internal error" in error


def test_error_messages_do_not_reveal_the_servers_folders(client, root):
    (root / "broken").mkdir(exist_ok=True)
    (root / "broken" / "images").mkdir(exist_ok=True)
    (root / "broken" / "landmarks.tps").write_text("LM=2\n1 2\n")
    error = _refused(client.get("/api/datasets/broken"), 400)
    assert str(root) not in error and "landmarks.tps" in error
