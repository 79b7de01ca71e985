"""Reading media results (SPEC S2): the output URL, its extension and kind, what the
call is priced on, and the meta handed back."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from puras_common.pricing import load_registry
from puras_runner.domain.media import (
    MediaOutputError,
    check_requested_kind,
    extension_for,
    find_output_url,
    kind_of,
    meta_of,
    outputs_for_pricing,
    parse_output_path,
    resolve_kind,
)

URL = "https://cdn.example/files/abc/out.png"


# -- output_url_path ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("outputs[0].asset.url", ["outputs", 0, "asset", "url"]),
        (".video.url", ["video", "url"]),
        ("images[1].url", ["images", 1, "url"]),
        ("images[-1].url", ["images", -1, "url"]),
        ('data["file url"][0]', ["data", "file url", 0]),
        ("['a.b'].c", ["a.b", "c"]),
        ("[0][1]", [0, 1]),
        ("  url ", ["url"]),
        ("audio-file.url", ["audio-file", "url"]),
    ],
)
def test_parse_output_path(path: str, steps: list[Any]) -> None:
    assert parse_output_path(path) == steps


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("", "empty"),
        ("a..b", "character 3"),
        ("a.", "character 3"),
        ("a[x]", "character 2"),
        ("a b", "character 2"),
        ("..a", "character 1"),
        ("a[0", "character 2"),
        ("9lives", "character 1"),
    ],
)
def test_bad_output_path_says_where(path: str, where: str) -> None:
    with pytest.raises(MediaOutputError, match=where):
        parse_output_path(path)


_keys = st.text(string.ascii_letters + "_", min_size=1, max_size=6)
_steps = st.lists(st.one_of(_keys, st.integers(-3, 20)), min_size=1, max_size=6)


def _render(steps: list[str | int]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


@given(_steps)
def test_path_round_trips(steps: list[str | int]) -> None:
    assert parse_output_path(_render(steps)) == steps


@pytest.mark.parametrize("text", [".", " . ", ""])
def test_a_path_with_no_step_is_refused(text: str) -> None:
    # Found by the property below: "." parsed to no steps at all.
    with pytest.raises(MediaOutputError, match="output_url_path"):
        parse_output_path(text)


@given(st.text(max_size=30))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    outcome: list[str | int] | str
    try:
        outcome = parse_output_path(text)
    except MediaOutputError as exc:
        outcome = str(exc)
    if isinstance(outcome, str):
        assert "output_url_path" in outcome
    else:
        assert outcome
        assert all(isinstance(s, str | int) for s in outcome)


def _nest(steps: list[str | int], leaf: Any) -> Any:
    value = leaf
    for step in reversed(steps):
        if isinstance(step, int):
            size = step + 1 if step >= 0 else -step
            items: list[Any] = [None] * size
            items[step] = value
            value = items
        else:
            value = {step: value}
    return value


@given(_steps)
def test_path_finds_what_it_names(steps: list[str | int]) -> None:
    result = _nest(steps, URL)
    if not isinstance(result, dict):
        result = {"wrapped": result}
        steps = ["wrapped", *steps]
    assert find_output_url(result, _render(steps)) == URL


def test_output_url_path_for_an_unusual_shape() -> None:
    result = {"outputs": [{"asset": {"url": URL, "mime": "image/png"}}], "id": "x"}
    assert find_output_url(result, "outputs[0].asset.url") == URL
    # An object pointed at whole counts by its url.
    assert find_output_url(result, "outputs[0].asset") == URL
    with pytest.raises(MediaOutputError, match="cannot find the output URL"):
        find_output_url(result)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "outputs[0].file.url",
            r"no key 'file' in outputs\[0\], which is an object with keys: asset",
        ),
        ("outputs[3].asset.url", r"outputs is a list of 1 item; \[3\] is out of range"),
        ("outputs.asset", r"outputs is a list of 1 item, not an object, so it has no key 'asset'"),
        ("id[0]", r"id is a string, not a list"),
        ("outputs[0].asset.size", r"points at a number, not an http\(s\) URL"),
        ("nothing", r"no key 'nothing' in the result, which is an object with keys: id, outputs"),
    ],
)
def test_bad_output_url_path_names_the_path_and_what_is_there(path: str, message: str) -> None:
    result = {"outputs": [{"asset": {"url": URL, "size": 3}}], "id": "x"}
    with pytest.raises(MediaOutputError, match=message) as caught:
        find_output_url(result, path)
    assert repr(path) in str(caught.value)


@pytest.mark.parametrize(
    "result",
    [
        {"images": [{"url": URL, "width": 1}, {"url": "https://other/2.png"}]},
        {"image": {"url": URL}},
        {"video": {"url": URL, "content_type": "video/mp4"}},
        {"audio": {"url": URL}},
        {"audio_file": {"url": URL}},
        {"output": {"url": URL}},
        {"output": [URL, "https://other/2.png"]},
        {"output": URL},
        {"url": URL},
        # The first known shape wins; one that holds no URL is skipped.
        {"images": [], "video": {"url": URL}},
        {"image": {"url": None}, "url": URL},
        {"output": ["not a url"], "url": URL},
    ],
)
def test_known_shapes(result: dict[str, Any]) -> None:
    assert find_output_url(result) == URL


def test_data_url_counts_as_an_output() -> None:
    data = "data:image/png;base64,iVBORw0KGgo="
    assert find_output_url({"images": [{"url": data}]}) == data


def test_no_known_shape_lists_the_keys_and_suggests_the_path() -> None:
    with pytest.raises(MediaOutputError) as caught:
        find_output_url({"seed": 1, "files": [{"href": URL}], "timings": {}})
    message = str(caught.value)
    assert "top-level keys: files, seed, timings" in message
    assert "output_url_path" in message


# -- extension and kind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "content_type", "ext"),
    [
        ("https://cdn/x/out.webp", "image/png", ".webp"),
        ("https://cdn/x/out.PNG?sig=a.b", None, ".png"),
        ("https://cdn/x/clip.mp4#t=1", None, ".mp4"),
        ("https://cdn/x/download", "video/mp4; codecs=avc1", ".mp4"),
        ("https://cdn/x/download", "image/jpeg", ".jpg"),
        ("https://cdn/x/download", "audio/mpeg", ".mp3"),
        ("https://cdn/x/download", "audio/x-wav", ".wav"),
        ("https://cdn/x/download", "video/quicktime", ".mov"),
        ("https://cdn/x/download", "application/octet-stream", ".bin"),
        ("https://cdn/x/download", None, ".bin"),
        ("https://cdn/x/.hidden", None, ".bin"),
        ("https://cdn/x/a.verylongext", None, ".bin"),
        ("https://cdn/x/a.p%2Fng", None, ".bin"),
        ("https://cdn/x/a.tar.gz", None, ".gz"),
        ("https://cdn/x/a.../", "image/png", ".png"),
        ("data:image/webp;base64,AAAA", None, ".webp"),
        ("data:;base64,AAAA", None, ".bin"),
    ],
)
def test_extension_for(url: str, content_type: str | None, ext: str) -> None:
    assert extension_for(url, content_type) == ext


@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=30)))
def test_extension_is_always_safe(path: str, content_type: str | None) -> None:
    ext = extension_for(f"https://cdn.example/{path}", content_type)
    assert ext.startswith(".")
    assert 2 <= len(ext) <= 9
    assert all(c in string.ascii_lowercase + string.digits for c in ext[1:])


@pytest.mark.parametrize(
    ("extension", "content_type", "kind"),
    [
        (".png", None, "image"),
        (".webp", None, "image"),
        (".mp4", None, "video"),
        (".wav", None, "audio"),
        (".bin", "video/mp4", "video"),
        (".png", "audio/wav", "audio"),
        (".bin", "application/octet-stream", None),
        (None, None, None),
    ],
)
def test_kind_of(extension: str | None, content_type: str | None, kind: str | None) -> None:
    assert kind_of(extension, content_type) == kind


def test_auto_kind_resolves_from_the_output_then_the_slug() -> None:
    assert resolve_kind("auto", "image", extension=".mp4") == "video"
    assert resolve_kind("auto", "video", content_type="audio/wav") == "audio"
    assert resolve_kind("auto", "video", extension=".bin") == "video"
    assert resolve_kind("auto", "image") == "image"


def test_explicit_kind_is_echoed_even_against_the_output() -> None:
    # The call is paid for by then: the label is the caller's, drive_path tells the type.
    assert resolve_kind("image", "image", extension=".webp") == "image"
    assert resolve_kind("video", "image", extension=".png") == "video"


def test_a_kind_that_is_no_kind_is_refused() -> None:
    with pytest.raises(MediaOutputError, match="kind must be one of image, video, audio, auto"):
        resolve_kind("picture", "image")
    with pytest.raises(MediaOutputError, match="'Video'"):
        check_requested_kind("Video")
    assert check_requested_kind("audio") == "audio"


# -- pricing and meta -----------------------------------------------------------------------


def test_outputs_count_what_came_back() -> None:
    result = {"images": [{"url": URL}, {"url": URL}], "timings": {"inference": 1.5}}
    assert outputs_for_pricing(result, {"num_images": 4}) == {
        "num_outputs": 2,
        "inference_time": 1.5,
    }


def test_outputs_single_file_and_metrics() -> None:
    result = {
        "video": {"url": URL},
        "metrics": {"inference_time": 12.4},
        "timings": {"inference": 1},
    }
    assert outputs_for_pricing(result, {}) == {"num_outputs": 1, "inference_time": 12.4}


def test_outputs_of_an_unusual_shape_count_as_asked() -> None:
    result = {"outputs_v2": {"a": {"url": URL}}}
    assert outputs_for_pricing(result, {"num_images": "3"}) == {"num_outputs": 3}
    assert outputs_for_pricing(result, {"num_images": 0}) == {"num_outputs": 1}
    assert outputs_for_pricing(result, {}) == {"num_outputs": 1}


@pytest.mark.parametrize("took", [True, "12", -1, float("nan"), float("inf"), None])
def test_unusable_inference_time_is_left_out(took: Any) -> None:
    out = outputs_for_pricing({"video": {"url": URL}, "metrics": {"inference_time": took}}, {})
    assert "inference_time" not in out


def test_outputs_price_with_the_registry() -> None:
    registry = load_registry()
    result = {"images": [{"url": URL}, {"url": URL}]}
    inputs = {"prompt": "x", "num_images": 4}
    outputs = outputs_for_pricing(result, inputs)
    assert registry.media_cost("bytedance/seedream-v4", inputs, outputs=outputs) == 2 * 36000
    video = {"video": {"url": URL}, "metrics": {"inference_time": 2}}
    assert (
        registry.media_cost(
            "bytedance/seedance-2-t2v",
            {"duration": "auto"},
            outputs=outputs_for_pricing(video, {"duration": "auto"}),
        )
        == 2 * 364000
    )


def test_meta_keeps_facts_and_drops_files() -> None:
    result = {
        "images": [{"url": URL}],
        "seed": 42,
        "timings": {"inference": 1.2},
        "has_nsfw_concepts": [False],
        "metrics": {"inference_time": 1.2},
        "prompt": "a cat",
    }
    assert meta_of(result) == {
        "seed": 42,
        "timings": {"inference": 1.2},
        "has_nsfw_concepts": [False],
        "metrics": {"inference_time": 1.2},
        "prompt": "a cat",
    }
    assert meta_of({"video": {"url": URL}, "audio_file": {"url": URL}, "url": URL}) == {}


def test_meta_drops_the_field_the_path_points_into() -> None:
    result = {"outputs_v2": [{"asset": {"url": URL}}], "seed": 3}
    assert meta_of(result, "outputs_v2[0].asset.url") == {"seed": 3}
    assert meta_of(result, "not a path") == result
