"""Calls media.run the way a skill does, and reports what it got (or the error)."""

from pathlib import Path
from typing import Any

from puras import PurasError, media


def run(inputs: dict[str, Any]) -> dict[str, Any]:
    try:
        made = media.run(
            inputs["model"], inputs.get("inputs") or {}, output_path=inputs.get("output_path")
        )
    except PurasError as exc:
        return {"error": str(exc), "status": getattr(exc, "status", None)}
    saved = Path("drive") / made["drive_path"]
    return {"made": made, "saved_bytes": saved.stat().st_size}
