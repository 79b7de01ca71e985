"""Prints the secret whole, split across two writes and flushes, on stderr, and raises
with it when asked to: every copy must reach the job's events as ***."""

import os
import sys
import time

from puras import secret


def run(inputs: dict) -> dict:
    name = inputs["name"]
    value = os.environ[name]
    print(f"whole: {value}", flush=True)
    half = len(value) // 2
    sys.stdout.write(f"split: {value[:half]}")
    sys.stdout.flush()
    time.sleep(0.3)  # the two halves reach the runner as separate chunks
    sys.stdout.write(f"{value[half:]} end\n")
    sys.stdout.flush()
    print(f"stderr: {value}", file=sys.stderr, flush=True)
    if inputs.get("fail"):
        raise RuntimeError(f"failing with {value}")
    return {"length": len(value), "via_sdk": secret(name) == value}
