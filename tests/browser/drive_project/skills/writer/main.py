"""Writes ``text`` to ``./drive/out/<name>.txt``: the file the dashboard's drive page
shows as written by this job."""

from pathlib import Path
from typing import Any


def run(inputs: dict[str, Any]) -> dict[str, Any]:
    target = Path("drive") / "out" / f"{inputs['name']}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(inputs["text"])
    return {"drive_path": f"out/{inputs['name']}.txt"}
