def run(inputs: dict) -> dict:
    """The bench's no-op: returns its inputs unchanged (no I/O, no imports)."""
    return inputs
