import os


def run(inputs: dict) -> dict:
    value = os.environ.get(inputs["name"], "")
    print(f"peek: {value}")
    # Returned as is: the tool result the model sees must show it masked.
    return {"length": len(value), "value": value}
