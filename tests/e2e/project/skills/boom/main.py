def helper(n):
    raise ValueError(f"boom: bad input {n}")


def run(inputs: dict) -> dict:
    print("about to fail")
    return helper(inputs.get("n", 42))
