import hashlib
import time


def run(inputs: dict) -> dict:
    time.sleep(inputs["ms"] / 1000)
    tag = inputs["tag"]
    return {"tag": tag, "digest": hashlib.sha256(tag.encode()).hexdigest()[:16], "ms": inputs["ms"]}
