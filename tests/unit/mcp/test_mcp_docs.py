"""The docs shipped with the MCP server, and the BM25 search over them."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from purasbackend_mcp.docs import (
    PAGE_ORDER,
    DocPage,
    Index,
    UnknownDoc,
    find_page,
    index,
    pages,
    tokenize,
)

NOT_BUILT = "not available in this version"


def page(slug: str, title: str, body: str) -> DocPage:
    return DocPage(slug=slug, title=title, summary="", body=f"# {title}\n\n{body}")


# -- the shipped pages ---------------------------------------------------------------


def test_every_shipped_page_is_listed_in_order() -> None:
    folder = resources.files("purasbackend_mcp").joinpath("docs")
    shipped = {p.name.removesuffix(".md") for p in folder.iterdir() if p.name.endswith(".md")}
    assert shipped == set(PAGE_ORDER)
    assert [p.slug for p in pages()] == list(PAGE_ORDER)
    # SPEC §10's list of pages.
    assert len(PAGE_ORDER) == 13


def test_every_page_has_a_title_and_a_summary() -> None:
    for p in pages():
        assert p.title, p.slug
        assert len(p.summary) > 20, p.slug
        assert p.body.startswith(f"# {p.title}\n")


def test_cross_references_name_existing_pages() -> None:
    for p in pages():
        for ref in re.findall(r"\[\[([^\]]+)\]\]", p.body):
            assert ref in PAGE_ORDER, f"{p.slug} links [[{ref}]]"


@pytest.mark.parametrize("slug", ["playground"])
def test_pages_about_unbuilt_capabilities_say_so_up_front(slug: str) -> None:
    p = find_page(slug)
    assert NOT_BUILT in (p.summary + p.body[:900]).lower(), slug


@pytest.mark.parametrize(
    ("slug", "facts"),
    [
        (
            "inputs-and-drive",
            (
                "POST /v1/drive/upload",
                "GET /v1/drive/list?prefix=",
                "GET /v1/drive/sign?path=&ttl=",
                "POST /v1/drive/share?path=",
                "DELETE /v1/drive/object?path=",
                "GET /v1/drive/zip?prefix=",
                "GET /v1/drive/origin?path=",
                "drive_sign(path, ttl=3600)",
            ),
        ),
        ("sdk-media", ("from puras import media", "POST /v1/media/generate", "PURAS_JOB_TOKEN")),
        ("models-and-pricing", ("media.run",)),
    ],
)
def test_pages_about_the_drive_and_media_describe_them_as_built(
    slug: str, facts: tuple[str, ...]
) -> None:
    p = find_page(slug)
    assert NOT_BUILT not in (p.summary + p.body).lower(), slug
    for fact in facts:
        assert fact in p.body + p.summary, (slug, fact)


def test_no_page_says_the_drive_api_or_media_is_missing() -> None:
    for p in pages():
        text = (p.summary + "\n\n" + p.body).lower()
        # Sentences, and a table's rows one by one.
        for part in re.split(r"(?<=[.!?])\s+|\n(?=\|)|\n\n", text):
            sentence = " ".join(part.split())
            for phrase in ("drive http api", "drive api", "drive upload", "media sdk", "media.run"):
                if phrase in sentence:
                    assert NOT_BUILT not in sentence, (p.slug, sentence)
                    assert "is not built" not in sentence, (p.slug, sentence)


@pytest.mark.parametrize("slug", ["agent-tools", "agent-attachments", "skills", "overview"])
def test_pages_about_the_agent_runtime_describe_it_as_running(slug: str) -> None:
    body = find_page(slug).body.lower()
    assert "agent runtime is not" not in body, slug
    assert "agentic (not available" not in body, slug
    head = find_page(slug).summary + find_page(slug).body[:900]
    if slug.startswith("agent-"):
        assert NOT_BUILT not in head.lower(), slug


def test_the_agent_tools_page_matches_the_runtime() -> None:
    body = find_page("agent-tools").body
    for tool in (
        "bash",
        "file_read",
        "media",
        "web_search",
        "image_search",
        "web_fetch",
        "download_url",
        "set_output",
    ):
        assert f"| `{tool}`" in body or f"`{tool}` |" in body, tool
    for event in ("agent_start", "model_response", "usage", "tool_call", "tool_result"):
        assert f"| `{event}` |" in body, event
    # A server without a media upstream says so, in the runtime's words.
    assert "media generation is not configured on this Puras server" in body
    assert "agent finished without calling set_output" in body


def test_secrets_and_feedback_are_described_as_built() -> None:
    concepts = find_page("concepts").body
    assert "POST /v1/jobs/{id}/feedback" in concepts
    assert "PUT /v1/secrets/{name}" in concepts
    tools = find_page("mcp-tools").body
    assert "## Not available in this version" not in tools
    for signature in (
        'submit_job_feedback(job_id, rating=0, comment="", end_user_id="") -> dict',
        "list_job_feedback(job_id) -> {feedback}",
        "job_feedback_stats(job_id) -> dict",
        "list_secrets() -> {secrets}",
        "set_secret(name, value) -> dict",
        "delete_secret(name) -> str",
    ):
        assert f"`{signature}`" in tools, signature
    for p in pages():
        text = " ".join((p.summary + " " + p.body).lower().split())
        for sentence in re.split(r"(?<=[.!?|])\s+", text):
            if "secrets" in sentence or "feedback" in sentence:
                assert NOT_BUILT not in sentence, (p.slug, sentence)


def test_the_mcp_page_documents_every_registered_tool() -> None:
    body = find_page("mcp-tools").body
    for name in (
        "configure",
        "show_config",
        "push",
        "list_deployments",
        "activate_deployment",
        "delete_deployment",
        "submit_job",
        "get_job",
        "list_jobs",
        "tail_job",
        "cancel_job",
        "drive_sign",
        "submit_agentic_job",
        "submit_function_job",
        "list_docs",
        "read_doc",
        "search_docs",
    ):
        assert f"`{name}" in body, name


@pytest.mark.parametrize(
    "given", ["mcp-tools", "MCP-Tools", "mcp_tools", "mcp-tools.md", "[[mcp-tools]]"]
)
def test_find_page_forgives_spelling(given: str) -> None:
    assert find_page(given).slug == "mcp-tools"


def test_an_unknown_slug_lists_the_pages() -> None:
    with pytest.raises(UnknownDoc, match="overview, quickstart"):
        find_page("nope")


# -- tokenizing ----------------------------------------------------------------------


def test_tokenize_drops_stop_words_and_folds_plurals() -> None:
    assert tokenize("How do I cancel the jobs?") == ["cancel", "job"]
    assert tokenize("Deployments, keys and policies") == ["deployment", "key", "policy"]
    assert tokenize("class status process") == ["class", "status", "process"]


def test_tokenize_keeps_compounds_and_their_parts() -> None:
    assert tokenize("set_output") == ["set_output", "set", "output"]
    assert tokenize("image-info skill.yaml") == ["image-info", "image", "info", "skill", "yaml"]


# -- ranking -------------------------------------------------------------------------


def test_bm25_prefers_more_occurrences_rarer_terms_and_shorter_pages() -> None:
    filler = "lorem ipsum dolor sit amet " * 20
    docs = [
        page("once", "One", "runner " + filler),
        page("thrice", "Three", "runner runner runner " + filler),
        page("short", "Short", "runner"),
        page("other", "Other", "scheduler " + filler),
    ]
    idx = Index(docs)
    assert [h.slug for h in idx.search("runner")] == ["short", "thrice", "once"]
    # The rarer of two terms weighs more.
    docs2 = [
        page("common", "A", "job job"),
        page("rare", "B", "idempotency"),
        page("c", "C", "job"),
        page("d", "D", "job"),
    ]
    assert idx.idf("runner") > 0
    assert Index(docs2).search("job idempotency")[0].slug == "rare"


def test_the_title_counts_more_than_the_body() -> None:
    docs = [
        page("body", "Other", "kubernetes cluster notes here"),
        page("title", "Kubernetes", "notes here too"),
    ]
    assert Index(docs).search("kubernetes")[0].slug == "title"


def test_no_match_is_no_hit_and_limit_is_applied() -> None:
    docs = [page(f"p{i}", f"P{i}", "shared word") for i in range(5)]
    idx = Index(docs)
    assert idx.search("absent") == []
    hits = idx.search("shared", limit=3)
    assert [h.slug for h in hits] == ["p0", "p1", "p2"]  # equal scores keep page order


def test_the_snippet_is_the_best_paragraph_under_its_heading() -> None:
    body = (
        "Intro words.\n\n## Cancelling\n\nPOST /v1/jobs/{id}/cancel stops a queued job.\n\n"
        "## Other\n\nNothing to see.\n"
    )
    [hit] = Index([page("c", "Concepts", body)]).search("cancel queued job")
    assert hit.section == "Cancelling"
    assert "cancel stops a queued job" in hit.snippet


def test_a_long_snippet_is_cut_around_the_match() -> None:
    words = " ".join(f"w{i}" for i in range(200))
    [hit] = Index([page("x", "X", f"{words} needle {words}")]).search("needle")
    assert "needle" in hit.snippet
    assert len(hit.snippet) <= 250
    assert hit.snippet.startswith("…")
    assert hit.snippet.endswith("…")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("set_output", "agent-tools"),
        ("kubernetes cluster", "self-hosting"),
        ("attach a pdf to an agent", "agent-attachments"),
        ("playground widget", "playground"),
        ("media.run image generation", "sdk-media"),
        ("model slug claude gpt gemini", "models-and-pricing"),
        ("load_path drive_path url base64", "inputs-and-drive"),
        ("skill.yaml fields entrypoint timeout_seconds", "skills"),
        ("tail_job max_seconds", "mcp-tools"),
    ],
)
def test_search_over_the_shipped_pages_finds_the_right_page_first(
    query: str, expected: str
) -> None:
    hits = index().search(query, 3)
    assert hits[0].slug == expected, [(h.slug, h.score) for h in hits]
    assert hits[0].score > 0
