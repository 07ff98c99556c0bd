"""The console served for a benchmark: a Streamlit process on a free port, pointed at a broker."""

import os
import subprocess

from dashboard.local.demo import start_console, stop_console
from dashboard.settings import ENV_PREFIX

__all__ = ["serve_console", "stop_console"]


def serve_console(port: int, **settings: str) -> subprocess.Popen:
    """The console with these WARREN_ settings (`vhost="big"` -> WARREN_VHOST=big), quiet."""
    env = os.environ | {f"{ENV_PREFIX}{name.upper()}": value for name, value in settings.items()}
    return start_console(env, port, quiet=True)
