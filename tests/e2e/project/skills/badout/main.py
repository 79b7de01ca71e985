def run(inputs: dict) -> dict:
    return {"echoed": 5}
