"""`warren demo` as a newcomer runs it: broker, tenants and console come up; Ctrl-C ends all,
even half-way through start-up, and leaves no process and no broker files behind; all its state
lives in the broker's folder."""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import requests

from dashboard.actions.audit import AuditLog
from dashboard.local.demo import broker_env
from dashboard.local.rabbitmq import RABBITMQ_ROOT, free_port
from dashboard.settings import ENV_PREFIX, Settings, load_settings
from tests.support.helpers import run_cli, wait_until

ENV = {name: value for name, value in os.environ.items() if "WARREN_" not in name}


def broker_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("warren-broker-*"))


def beam_processes_in(dirs: set[Path]) -> list[int]:
    """Erlang VMs whose environment points into one of `dirs`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(f"RABBITMQ_MNESIA_BASE={folder}" in environ for folder in dirs):
            found.append(int(proc.name))
    return found


class Demo:
    def __init__(self, cwd: Path, *args: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "demo", "--port", str(self.port), *args],
            env=ENV,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 90) -> str:
        while not any(text in line for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=timeout))
            except queue.Empty:
                pytest.fail(f"the demo did not print {text!r}; it printed {self.seen}")
        return "".join(self.seen)

    def wait_for_console(self) -> None:
        """The demo gives its console 60 s to answer after printing its address, then ends with
        a sentence; a failure shows what it printed, so that a busy machine and a taken port
        tell themselves apart."""
        wait_until(
            lambda: console_up(self.port) or self.process.poll() is not None,
            timeout=90,
            what="the console to answer",
        )
        if not console_up(self.port):
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            pytest.fail(f"the console did not answer; the demo printed {''.join(self.seen)}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)

    def stop(self) -> None:
        """After a failed test: SIGTERM lets the demo clean up; SIGKILL only if it will not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def demo(tmp_path):
    started = []

    def start(*args: str) -> Demo:
        started.append(Demo(tmp_path, *args))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def console_up(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok
    except requests.ConnectionError:
        return False


# The demo always runs Debian's RabbitMQ (it is what a fresh machine has): the 4.0 pass would run
# the same demo again, beside the 3.10 pass's, and each would see the other's folder.
only_once = pytest.mark.skipif(
    RABBITMQ_ROOT is not None, reason="the demo runs Debian's RabbitMQ: the 3.10 pass runs it"
)


@only_once
def test_demo_serves_tenants_and_ctrl_c_leaves_nothing_running(demo):
    before = broker_dirs()
    running = demo("--tenants", "6")
    printed = running.wait_for("Warren: http://")
    management = re.search(r"management (http://\S+)", printed).group(1)
    running.wait_for_console()
    listed = subprocess.run(
        [sys.executable, "-m", "dashboard", "tenants", "--json"],
        env=ENV | {"WARREN_MANAGEMENT_URL": management},
        capture_output=True,
        text=True,
        check=True,
    )
    tenants = [record["tenant"] for record in json.loads(listed.stdout)]
    assert sorted(tenants) == ["acme", "globex", "hooli", "initech", "stark", "umbrella"]
    # The other RabbitMQ version's suite may run its own demo at the same time.
    port = management.rsplit(":", 1)[1]
    ours = {
        folder
        for folder in broker_dirs() - before
        if f"management.tcp.port = {port}\n" in (folder / "rabbitmq.conf").read_text()
    }
    assert len(ours) == 1

    assert running.interrupt() == 0

    assert not console_up(running.port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{management}/api/overview", timeout=2)
    assert not any(folder.exists() for folder in ours)
    wait_until(lambda: beam_processes_in(ours) == [], timeout=15, what="no broker process")


@only_once
def test_ctrl_c_during_start_up_leaves_nothing_running(demo):
    before = broker_dirs()
    running = demo()
    running.wait_for("Starting a disposable RabbitMQ node")
    ours = wait_until(lambda: broker_dirs() - before, what="the broker's folder")
    wait_until(lambda: beam_processes_in(ours), what="the broker to be starting")

    assert running.interrupt() == 0

    assert broker_dirs() - before == set()
    # SIGKILLed processes take a moment to leave the process table.
    wait_until(lambda: beam_processes_in(ours) == [], timeout=15, what="no broker process")


def test_every_setting_is_pinned_and_the_state_lies_in_the_broker_folder(broker):
    env = broker_env(broker)

    assert set(env) == {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    # As the demo loads them: every value as text.
    load_settings(**{name.removeprefix(ENV_PREFIX).lower(): value for name, value in env.items()})
    paths = {
        name: Path(env[f"{ENV_PREFIX}{name.upper()}"])
        for name, field in Settings.model_fields.items()
        if field.annotation is Path
    }
    assert sorted(paths) == ["audit_db", "history_db"]
    assert {name: path.parent for name, path in paths.items()} == {
        "audit_db": broker.base_dir,
        "history_db": broker.base_dir,
    }


def test_an_action_in_the_demo_is_audited_in_its_folder_not_in_home(broker, unique, tmp_path):
    exchange, tenant = unique("tenants"), unique("acme")
    home = tmp_path / "home"
    home.mkdir()

    done = run_cli(
        broker,
        None,
        "bind",
        "--exchange",
        exchange,
        "--tenant",
        tenant,
        "--yes",
        **broker_env(broker) | {"HOME": str(home)},
    )

    assert done.returncode == 0, done.stderr
    records = AuditLog(broker.base_dir / "audit.sqlite").records()
    assert [(r.action, r.outcome) for r in records if r.target == tenant] == [("bind", "created")]
    assert list(home.rglob("*")) == []
