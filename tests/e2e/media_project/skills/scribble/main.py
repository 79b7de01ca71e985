"""Writes ``write`` ({path: text}) under ./drive/, deletes ``delete``, reads ``read``;
with ``token``, returns the job's token (to check what it opens once the job is over)."""

import os
from pathlib import Path
from typing import Any

from puras import load_bytes


def run(inputs: dict[str, Any]) -> dict[str, Any]:
    for rel, text in (inputs.get("write") or {}).items():
        target = Path("drive") / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for rel in inputs.get("delete") or []:
        (Path("drive") / rel).unlink()
    out: dict[str, Any] = {"ok": True}
    if inputs.get("token"):
        out["token"] = os.environ.get("PURAS_JOB_TOKEN")
        print("my token is", out["token"])  # the job's log masks it
        out["api_url"] = os.environ.get("PURAS_API_URL")
    if inputs.get("read"):
        out["read"] = load_bytes({"drive_path": inputs["read"]}).decode()
    return out
