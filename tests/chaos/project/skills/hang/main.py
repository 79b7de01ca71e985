import time


def run(inputs: dict) -> dict:
    time.sleep(60)
    return {"tag": inputs["tag"]}
