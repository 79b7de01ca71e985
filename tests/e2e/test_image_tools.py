"""The docs' example project (``examples/image-tools``) end to end, as an app uses it.

``image-info`` takes every shape of file input the docs promise (S1): a drive path of a
file uploaded through ``POST /v1/drive/upload`` (D2), an image URL (here a server on
loopback, so the job's fetch goes through the runner's egress proxy), and an inline
data URL, as an object or a bare string. Each run writes a JPEG thumbnail into the
drive, which the listing shows (D3) and a signed link serves (D4).

The docs' "Calling it from an app" JavaScript runs under Node as printed (only its
``API_BASE`` and ``KEY`` come from the environment): upload, ``image-info`` waited for
inline, ``caption`` submitted with the upload attached. The caption skill's model is a
scripted fake of the Anthropic API, which also shows what the model was sent.

Pillow comes from the package index (PyPI) through ``requirements.txt``, as in
``./dev demo``: the first run of a stack builds the deployment's venv.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fake_providers import FakeProviders, reply_tool
from stack_fixtures import serve_stack

from puras_cli.devstack import Stack
from puras_cli.devstack.png import gradient_png, png_data_url
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "image-tools"
SNIPPET = Path(__file__).parent / "node" / "app_snippet.mjs"
WIDTH, HEIGHT = 800, 600
THUMB = (512, 384)
"""``Image.thumbnail((512, 512))`` of an 800x600 image keeps its aspect ratio."""
CAPTION = "A sunset gradient that dreams in pixels, red to green."
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def png() -> bytes:
    return gradient_png(WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def image_url(png: bytes) -> Iterator[str]:
    """The PNG served over HTTP on loopback, as a photo on someone's web server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/photo.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/photo.png"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    with FakeProviders.in_thread() as f:
        yield f


@pytest.fixture(scope="module")
def stack(fake: FakeProviders, image_url: str) -> Iterator[Stack]:
    yield from serve_stack(
        {
            # The image server is on loopback at a port of its own; real images are on
            # public hosts at 80 and 443.
            "PURAS_RUNNER_EGRESS_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "PURAS_RUNNER_EGRESS_PORTS": json.dumps([80, 443, urlsplit(image_url).port]),
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-test-key",
        }
    )


@pytest.fixture
def api(stack: Stack, fake: FakeProviders, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A fresh funded project with examples/image-tools deployed and active."""
    fake.anthropic.reset()
    a = new_api(stack, request.node.name)
    r = a.push(PROJECT, notes="image-tools")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


def _upload(api: Api, png: bytes) -> dict[str, Any]:
    r = api.http.post("/v1/drive/upload", files={"file": ("photo.png", png, "image/png")})
    assert r.status_code == 200, r.text
    up: dict[str, Any] = r.json()
    assert up["drive_path"].startswith("uploads/"), up
    assert up["drive_path"].endswith(".png"), up
    assert up["bytes"] == len(png)
    assert up["content_type"] == "image/png"
    return up


def _finished(api: Api, skill: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The job's final state (the first run of a stack also builds the venv: the wait
    may run out before the job ends, and its stream then says when it does)."""
    r = api.submit(skill, inputs, wait="true", timeout="60")
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    if job["status"] not in TERMINAL:
        job = api.wait_terminal(job["id"], timeout=300)
    return job


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    assert data[:3] == b"\xff\xd8\xff", data[:16]
    i = 2
    while i + 9 <= len(data):
        assert data[i] == 0xFF, f"no JPEG marker at byte {i}"
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    raise AssertionError("no start-of-frame segment in the JPEG")


def _check_result(result: dict[str, Any]) -> str:
    assert set(result) == {"width", "height", "format", "thumb"}, result
    assert (result["width"], result["height"], result["format"]) == (WIDTH, HEIGHT, "PNG")
    thumb: str = result["thumb"]["drive_path"]
    assert thumb.startswith("thumbs/"), thumb
    assert thumb.endswith(".jpg"), thumb
    return thumb


def _check_thumb_is_listed(api: Api, thumb: str) -> None:
    listed = api.http.get("/v1/drive/list", params={"prefix": "thumbs/"})
    assert listed.status_code == 200, listed.text
    assert thumb in [f["path"] for f in listed.json()["files"]], listed.json()


def _check_thumb_is_served(api: Api, thumb: str) -> None:
    signed = api.http.get("/v1/drive/sign", params={"path": thumb, "ttl": "3600"})
    assert signed.status_code == 200, signed.text
    # No key: the signed URL is the proof, as for an <img src> in the app's page.
    got = httpx.get(signed.json()["url"], timeout=30)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "image/jpeg"
    assert _jpeg_size(got.content) == THUMB


Shape = Callable[[Api, bytes, str], Any]

SHAPES: dict[str, Shape] = {
    "drive_path": lambda api, png, url: {"drive_path": _upload(api, png)["drive_path"]},
    "drive_path_string": lambda api, png, url: _upload(api, png)["drive_path"],
    "url": lambda api, png, url: {"url": url},
    "data": lambda api, png, url: {"data": png_data_url(png)},
    "data_url_string": lambda api, png, url: png_data_url(png),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_image_info_takes_each_input_shape_and_writes_a_thumbnail(
    api: Api, png: bytes, image_url: str, shape: str
) -> None:
    image = SHAPES[shape](api, png, image_url)
    job = _finished(api, "image-info", {"image": image})
    assert job["status"] == "succeeded", job["error"]
    thumb = _check_result(job["result"])
    if shape.startswith("drive_path"):
        # Named after the upload: uploads/<id>.png gives thumbs/<id>.jpg.
        assert (
            thumb
            == f"thumbs/{Path(image if isinstance(image, str) else image['drive_path']).stem}.jpg"
        )
    _check_thumb_is_served(api, thumb)
    _check_thumb_is_listed(api, thumb)


def test_a_missing_drive_file_fails_the_job_saying_so(api: Api) -> None:
    job = _finished(api, "image-info", {"image": {"drive_path": "uploads/nobody.png"}})
    assert job["status"] == "failed"
    assert "uploads/nobody.png" in job["error"]


def test_the_docs_app_snippet_runs_under_node(
    stack: Stack, api: Api, fake: FakeProviders, png: bytes, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the app snippet is JavaScript run by Node 20+")
    # The snippet waits 20 s for image-info; the stack's first run builds the venv first.
    warm = _finished(api, "image-info", {"image": png_data_url(png)})
    assert warm["status"] == "succeeded", warm["error"]
    fake.anthropic.script(reply_tool("set_output", {"caption": CAPTION}))
    photo = tmp_path / "photo.png"
    photo.write_bytes(png)
    ran = subprocess.run(
        [node, str(SNIPPET), str(photo)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PURAS_API_BASE": stack.api_base,
            "PURAS_API_KEY": api.key,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    assert set(out) == {"info", "captionJobId"}, out
    if out["info"] is None:  # the snippet keeps only the result: show the job instead
        jobs = api.http.get("/v1/jobs").json()["jobs"]
        ran_info = [(j["status"], j["error"]) for j in jobs if j["skill"] == "image-info"]
        raise AssertionError(f"image-info gave no result: {ran_info}")
    thumb = _check_result(out["info"])
    _check_thumb_is_served(api, thumb)
    _check_thumb_is_listed(api, thumb)

    got = api.http.get(f"/v1/jobs/{out['captionJobId']}")
    assert got.status_code == 200, got.text
    assert got.json()["skill"] == "caption"
    final = api.wait_terminal(out["captionJobId"])
    assert final["status"] == "succeeded", final["error"]
    assert final["result"] == {"caption": CAPTION}
    # The model saw the uploaded photo itself, next to the prompt, under its skill's prompt.
    (sent,) = fake.anthropic.requests
    assert sent["model"] == "claude-sonnet-4-7"
    assert "captions for product photos" in json.dumps(sent["system"])
    first = sent["messages"][0]["content"]
    images = [b for b in first if b.get("type") == "image"]
    assert len(images) == 1, first
    assert images[0]["source"]["media_type"] == "image/png"
    assert base64.b64decode(images[0]["source"]["data"]) == png
    assert any("Tone: playful." in b.get("text", "") for b in first)
