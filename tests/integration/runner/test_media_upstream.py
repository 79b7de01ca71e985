"""The media upstream adapter against the scripted fake over real HTTP on loopback
(allowed for the downloads by the operator's networks, as loopback is refused by
default)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fake_media_upstream import (
    FakeMediaUpstream,
    Script,
    audio_result,
    image_result,
    tiny_mp4,
    tiny_png,
    tiny_wav,
    video_result,
)

from puras_runner.adapters.media_routes import load_media_routes
from puras_runner.adapters.media_upstream import MediaUpstream, MediaUpstreamError
from puras_runner.domain.media import (
    extension_for,
    find_output_url,
    meta_of,
    outputs_for_pricing,
    resolve_kind,
)

pytestmark = pytest.mark.integration

KEY = "fal-test-key-8c1f0a77d2"
LOOPBACK = ["127.0.0.0/8"]
IMAGE = "fal-ai/bytedance/seedream/v4/text-to-image"
VIDEO = "fal-ai/veo3"
AUDIO = "fal-ai/some/tts"


@pytest.fixture
def fake() -> Iterator[FakeMediaUpstream]:
    with FakeMediaUpstream.running(key=KEY) as upstream:
        yield upstream


def _upstream(fake: FakeMediaUpstream, **kwargs: Any) -> MediaUpstream:
    options: dict[str, Any] = {
        "base_url": fake.base_url,
        "key": KEY,
        "poll_interval_s": 0.01,
        "max_poll_interval_s": 0.05,
        "timeout_s": 10.0,
        "allow_networks": LOOPBACK,
    }
    options.update(kwargs)
    return MediaUpstream(**options)


async def test_image_call_sends_the_key_and_inputs_and_downloads_without_it(
    fake: FakeMediaUpstream, tmp_path: Path
) -> None:
    fake.script(IMAGE, Script(result=image_result(fake)))
    inputs = {"prompt": "a red bicycle", "num_images": 1}
    done = await _upstream(fake).generate(IMAGE, inputs)

    [submit] = fake.submits()
    assert submit.path == f"/{IMAGE}"
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.body == inputs
    assert done.request_id.startswith("req-")
    url = find_output_url(done.result)
    assert done.result["seed"] == 42

    dest = tmp_path / f"out{extension_for(url)}"
    saved = await _upstream(fake).download(url, dest)
    assert dest.read_bytes() == tiny_png()
    assert (saved.size, saved.content_type) == (len(tiny_png()), "image/png")
    assert resolve_kind("auto", "image", extension=dest.suffix) == "image"
    # The output's host is not trusted with the key.
    [get_file] = [r for r in fake.requests if r.path.startswith("/files/")]
    assert "authorization" not in get_file.headers
    # Polls and the result read carry the key, to the upstream's own origin only.
    assert all(
        r.headers.get("authorization") == f"Key {KEY}"
        for r in fake.requests
        if not r.path.startswith("/files/")
    )


async def test_video_is_polled_until_completed(fake: FakeMediaUpstream, tmp_path: Path) -> None:
    fake.script(VIDEO, Script(polls=4, result=video_result(fake)))
    done = await _upstream(fake).generate(VIDEO, {"prompt": "thunder", "duration": "4s"})
    statuses = [r for r in fake.requests if r.path.endswith("/status")]
    assert len(statuses) == 5
    assert statuses[0].path == f"/fal-ai/veo3/requests/{done.request_id}/status"
    url = find_output_url(done.result)
    assert extension_for(url, "video/mp4") == ".mp4"
    saved = await _upstream(fake).download(url, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").read_bytes() == tiny_mp4()
    assert saved.content_type == "video/mp4"
    assert meta_of(done.result) == {"seed": 7}


async def test_audio(fake: FakeMediaUpstream, tmp_path: Path) -> None:
    fake.script(AUDIO, Script(polls=1, result=audio_result(fake)))
    done = await _upstream(fake).generate(AUDIO, {"text": "hello"})
    url = find_output_url(done.result)
    saved = await _upstream(fake).download(url, tmp_path / "a.wav")
    assert (tmp_path / "a.wav").read_bytes() == tiny_wav()
    assert resolve_kind("auto", "video", content_type=saved.content_type) == "audio"
    assert outputs_for_pricing(done.result, {}) == {"num_outputs": 1, "inference_time": 2.5}


async def test_unscripted_model_answers_its_kind_from_the_shipped_routes(
    fake: FakeMediaUpstream,
) -> None:
    route = load_media_routes()["google/veo-3-fast-i2v"]
    done = await _upstream(fake).generate(route.upstream_model, {"prompt": "x"})
    assert "video" in done.result
    # The fake serves under the app (the model id's first two segments).
    assert any(r.path.startswith("/fal-ai/veo3/requests/") for r in fake.requests)


async def test_unusual_shape_with_output_url_path(fake: FakeMediaUpstream, tmp_path: Path) -> None:
    odd = {"outputs": [{"asset": {"url": fake.file_url("out.png")}}], "id": "kl-1"}
    fake.script("fal-ai/kling-image/v3/text-to-image", Script(result=odd))
    done = await _upstream(fake).generate("fal-ai/kling-image/v3/text-to-image", {"prompt": "x"})
    with pytest.raises(ValueError, match="output_url_path"):
        find_output_url(done.result)
    url = find_output_url(done.result, "outputs[0].asset.url")
    await _upstream(fake).download(url, tmp_path / "o.png")
    assert (tmp_path / "o.png").read_bytes() == tiny_png()
    assert meta_of(done.result, "outputs[0].asset.url") == {"id": "kl-1"}


async def test_submit_422_detail_is_readable_and_not_retried(fake: FakeMediaUpstream) -> None:
    detail = [
        {"loc": ["body", "prompt"], "msg": "field required", "type": "missing"},
        {"loc": ["body", "num_images"], "msg": "must be <= 4", "type": "less_than_equal"},
    ]
    fake.script(IMAGE, Script(submit_status=422, submit_detail=detail))
    with pytest.raises(MediaUpstreamError) as caught:
        await _upstream(fake).generate(IMAGE, {"num_images": 9})
    assert caught.value.status == 422
    assert caught.value.message == "prompt: field required; num_images: must be <= 4"
    assert str(caught.value) == (
        "media model call failed: HTTP 422: prompt: field required; num_images: must be <= 4"
    )
    assert len(fake.submits()) == 1


async def test_submit_5xx_is_not_retried(fake: FakeMediaUpstream) -> None:
    fake.script(IMAGE, Script(submit_status=503, submit_detail="overloaded"))
    with pytest.raises(MediaUpstreamError, match="HTTP 503: overloaded"):
        await _upstream(fake).generate(IMAGE, {"prompt": "x"})
    assert len(fake.submits()) == 1


async def test_failed_request_says_why(fake: FakeMediaUpstream) -> None:
    fake.script(VIDEO, Script(polls=1, failed_error="content policy violation"))
    with pytest.raises(MediaUpstreamError, match="fal-ai/veo3 failed: content policy violation"):
        await _upstream(fake).generate(VIDEO, {"prompt": "x"})


async def test_failed_result_carries_its_status_and_detail(fake: FakeMediaUpstream) -> None:
    fake.script(VIDEO, Script(result_status=422, result_detail="image_url: cannot be fetched"))
    with pytest.raises(MediaUpstreamError) as caught:
        await _upstream(fake).generate(VIDEO, {"prompt": "x"})
    assert (caught.value.status, caught.value.message) == (422, "image_url: cannot be fetched")


async def test_transient_status_failures_are_retried(fake: FakeMediaUpstream) -> None:
    fake.script(VIDEO, Script(status_failures=2, polls=1))
    done = await _upstream(fake).generate(VIDEO, {"prompt": "x"})
    assert "video" in done.result
    assert len([r for r in fake.requests if r.path.endswith("/status")]) == 4


async def test_persistent_status_failures_fail_the_call(fake: FakeMediaUpstream) -> None:
    fake.script(VIDEO, Script(status_failures=100))
    with pytest.raises(MediaUpstreamError) as caught:
        await _upstream(fake).generate(VIDEO, {"prompt": "x"})
    assert caught.value.status == 503
    assert len(fake.submits()) == 1


async def test_deadline_fails_the_call_and_cancels_upstream(fake: FakeMediaUpstream) -> None:
    fake.script(VIDEO, Script(never_completes=True))
    with pytest.raises(MediaUpstreamError) as caught:
        await _upstream(fake, timeout_s=0.3).generate(VIDEO, {"prompt": "x"})
    assert caught.value.status is None
    assert "fal-ai/veo3 did not finish within 0.3 s" in str(caught.value)
    [rid] = fake.cancelled()
    assert f"request {rid} was cancelled" in str(caught.value)


async def test_status_url_on_another_host_is_refused(fake: FakeMediaUpstream) -> None:
    elsewhere = f"http://localhost:{fake.port}/steal/requests/x/status"
    fake.script(IMAGE, Script(status_url=elsewhere))
    with pytest.raises(MediaUpstreamError, match=r"status_url is on localhost, not 127\.0\.0\.1"):
        await _upstream(fake).generate(IMAGE, {"prompt": "x"})
    assert not any(r.path.startswith("/steal") for r in fake.requests)


async def test_wrong_key_is_a_401(fake: FakeMediaUpstream) -> None:
    with pytest.raises(MediaUpstreamError) as caught:
        await _upstream(fake, key="wrong").generate(IMAGE, {"prompt": "x"})
    assert caught.value.status == 401
    assert "authorization key" in caught.value.message


async def test_unreachable_upstream(tmp_path: Path) -> None:
    with FakeMediaUpstream.running() as gone:
        url = gone.base_url
    upstream = MediaUpstream(base_url=url, key=KEY, timeout_s=5)
    with pytest.raises(
        MediaUpstreamError, match=r"cannot reach the media upstream at 127\.0\.0\.1"
    ):
        await upstream.generate(IMAGE, {"prompt": "x"})


async def test_given_client_is_used_and_left_open(fake: FakeMediaUpstream) -> None:
    async with httpx.AsyncClient(headers={"X-Trace": "t1"}) as client:
        upstream = _upstream(fake, client=client)
        await upstream.generate(IMAGE, {"prompt": "x"})
        await upstream.generate(IMAGE, {"prompt": "y"})
        assert not client.is_closed
        # The key is set per request, never on the shared client.
        assert "authorization" not in client.headers
    assert all(r.headers["x-trace"] == "t1" for r in fake.submits())

    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    await _upstream(fake, client=factory).generate(IMAGE, {"prompt": "z"})
    assert len(made) == 1
    assert made[0].is_closed


# -- downloads ------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False])
async def test_download_over_the_cap_leaves_no_file(
    fake: FakeMediaUpstream, tmp_path: Path, declared: bool
) -> None:
    url = fake.add_file("big.mp4", b"\0" * 5000, "video/mp4", content_length=declared)
    dest = tmp_path / "big.mp4"
    with pytest.raises(MediaUpstreamError, match=r"larger than the 0\.00391 MB limit"):
        await _upstream(fake, max_output_bytes=4096).download(url, dest)
    assert list(tmp_path.iterdir()) == []
    # At the cap exactly it is whole.
    saved = await _upstream(fake, max_output_bytes=5000).download(url, dest)
    assert saved.size == 5000
    assert dest.stat().st_size == 5000


async def test_download_is_ssrf_safe_by_default(fake: FakeMediaUpstream, tmp_path: Path) -> None:
    upstream = _upstream(fake, allow_networks=())
    with pytest.raises(MediaUpstreamError, match=r"refused: 127\.0\.0\.1 resolves to a loopback"):
        await upstream.download(fake.file_url("out.png"), tmp_path / "x.png")
    assert not any(r.path.startswith("/files/") for r in fake.requests)
    with pytest.raises(MediaUpstreamError, match="only http:// and https://"):
        await upstream.download("file:///etc/passwd", tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


async def test_download_of_a_missing_file(fake: FakeMediaUpstream, tmp_path: Path) -> None:
    with pytest.raises(MediaUpstreamError, match="HTTP 404: downloading the output failed"):
        await _upstream(fake).download(fake.file_url("nope.png"), tmp_path / "x.png")


async def test_download_of_a_data_url(fake: FakeMediaUpstream, tmp_path: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    saved = await _upstream(fake).download(url, tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes() == tiny_png()
    assert saved.content_type == "image/png"
    with pytest.raises(MediaUpstreamError, match="larger than"):
        await _upstream(fake, max_output_bytes=10).download(url, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


# -- the key stays secret -------------------------------------------------------------------


async def test_key_is_never_logged_nor_in_errors(
    fake: FakeMediaUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script(VIDEO, Script(polls=1, status_failures=1, result=video_result(fake)))
    fake.script(IMAGE, Script(submit_status=422, submit_detail="bad"))
    fake.script("fal-ai/slow/model", Script(never_completes=True))
    upstream = _upstream(fake)
    errors: list[str] = []
    with structlog.testing.capture_logs() as events:
        done = await upstream.generate(VIDEO, {"prompt": "x"})
        await upstream.download(find_output_url(done.result), tmp_path / "v.mp4")
        try:
            await upstream.generate(IMAGE, {"prompt": "x"})
        except MediaUpstreamError as exc:
            errors.append(str(exc))
        try:
            await _upstream(fake, timeout_s=0.05).generate("fal-ai/slow/model", {"prompt": "x"})
        except MediaUpstreamError as exc:
            errors.append(str(exc))
    assert [e["event"] for e in events].count("media upstream completed") == 1
    assert "media upstream read retried" in [e["event"] for e in events]
    assert len(errors) == 2
    logged = repr(events) + caplog.text + "".join(errors) + repr(upstream)
    assert "fal-test-key" not in logged
    # The key did go where it belongs.
    assert fake.submits()[0].headers["authorization"] == f"Key {KEY}"
