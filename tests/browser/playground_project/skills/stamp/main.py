"""Copies the photo it is given into the drive, named by its content."""

import hashlib
import os

from puras import load_bytes


def run(inputs: dict) -> dict:
    data = load_bytes(inputs["photo"])
    out = f"playground/{hashlib.sha256(data).hexdigest()[:16]}.png"
    os.makedirs("drive/playground", exist_ok=True)
    with open(f"drive/{out}", "wb") as f:
        f.write(data)
    print(f"copied {len(data)} bytes to {out}")
    return {
        "copy": {"drive_path": out},
        "bytes": len(data),
        "caption": inputs["caption"],
        "style": inputs["style"],
        "copies": inputs.get("copies", 1),
        "tags": inputs.get("tags", []),
    }
