import sys
import time


def run(inputs: dict) -> dict:
    print("napping", flush=True)
    sys.stdout.flush()
    time.sleep(inputs["seconds"])
    return {"slept": inputs["seconds"]}
