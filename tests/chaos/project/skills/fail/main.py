def run(inputs: dict) -> dict:
    raise ValueError(f"chaos failure {inputs['tag']}")
