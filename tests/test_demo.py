"""`warren demo` as a newcomer runs it: broker, tenants and console come up; Ctrl-C ends all."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import requests

from dashboard.localbroker import free_port
from tests.conftest import wait_until


def test_demo_serves_tenants_and_ctrl_c_leaves_nothing_running(tmp_path):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if "WARREN_" not in name}
    demo = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "demo", "--port", str(port), "--tenants", "6"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not any("Warren: http://" in line for line in lines):
            line = demo.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        management = re.search(r"management (http://\S+)", "".join(lines)).group(1)

        def console_up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_until(console_up, what="the console to answer")
        listed = subprocess.run(
            [sys.executable, "-m", "dashboard", "tenants", "--json"],
            env=env | {"WARREN_MANAGEMENT_URL": management},
            capture_output=True,
            text=True,
            check=True,
        )
        tenants = [record["tenant"] for record in json.loads(listed.stdout)]
        assert sorted(tenants) == ["acme", "globex", "hooli", "initech", "stark", "umbrella"]

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    assert not console_up()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{management}/api/overview", timeout=2)
