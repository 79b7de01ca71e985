"""Return image dimensions and write a 512px thumbnail back into the drive."""

import os

from PIL import Image

from puras import load_path


def run(inputs: dict) -> dict:
    src = load_path(inputs["image"], suffix=".img")
    with Image.open(src) as im:
        width, height, fmt = im.width, im.height, im.format
        im.thumbnail((512, 512))
        out_rel = f"thumbs/{src.stem}.jpg"
        # The drive starts empty for a new project: create the folder on first use.
        os.makedirs("drive/thumbs", exist_ok=True)
        im.convert("RGB").save(f"drive/{out_rel}", "JPEG", quality=85)
    return {
        "width": width,
        "height": height,
        "format": fmt,
        "thumb": {"drive_path": out_rel},
    }
