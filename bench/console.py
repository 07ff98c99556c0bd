"""The console served for a benchmark: a Streamlit process on a free port, pointed at a broker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def serve_console(port: int, **settings: str) -> subprocess.Popen:
    """Start the console with these WARREN_ settings (`vhost="big"` -> WARREN_VHOST=big) and
    return once it answers its health check."""
    env = os.environ | {f"WARREN_{name.upper()}": value for name, value in settings.items()}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.headless", "true"]  # fmt: skip
    console = subprocess.Popen(
        command, env=env, cwd=APP.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok:
                return console
        except requests.ConnectionError:
            time.sleep(0.3)
    console.kill()
    raise TimeoutError("the console did not start")


def stop_console(console: subprocess.Popen) -> None:
    console.terminate()
    try:
        console.wait(timeout=30)
    except subprocess.TimeoutExpired:
        console.kill()
        console.wait()
