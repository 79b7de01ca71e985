def run(inputs: dict) -> dict:
    return {"echoed": inputs["text"]}
