import subprocess
import time


def run(inputs: dict) -> dict:
    # A grandchild in the job's process group must die with it.
    subprocess.Popen(["sleep", "120"])
    time.sleep(120)
    return {}
