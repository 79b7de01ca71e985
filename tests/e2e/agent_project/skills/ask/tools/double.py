import os

from puras import secret


def run(inputs: dict[str, int]) -> dict[str, object]:
    print("doubling", inputs["n"])
    if inputs["n"] < 0:
        raise ValueError("only non-negative numbers")
    assert os.getcwd()
    return {"doubled": inputs["n"] * 2, "has_secret": bool(secret_or_none())}


def secret_or_none() -> str | None:
    try:
        return secret("DEMO_TOKEN")
    except Exception:
        return None
