"""Reports the size of each file input, whatever shape it came in."""

from puras import load_bytes


def run(inputs: dict) -> dict:
    sizes = {"source": len(load_bytes(inputs["source"]))}
    for i, clip in enumerate(inputs.get("clips", [])):
        sizes[f"clip{i}"] = len(load_bytes(clip))
    if "voice" in inputs:
        sizes["voice"] = len(load_bytes(inputs["voice"]))
    return {"sizes": sizes, "notes": inputs.get("notes", "")}
