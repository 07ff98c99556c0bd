"""`warren demo`: a disposable local broker, a live workload, and the console on top of it.

Ctrl-C (or SIGTERM, or closing the terminal) stops all three and leaves nothing running.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from dashboard.errors import WarrenError
from dashboard.local.rabbitmq import LocalBroker, free_port
from dashboard.local.workload import Workload, demo_tenants
from dashboard.settings import ENV_PREFIX, load_settings

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_demo(port: int, tenants: int) -> int:
    # SIGINT too: a process started in the background by a non-interactive shell inherits
    # SIGINT ignored, and Ctrl-C must stop the demo however it was started.
    for number in STOP_SIGNALS:
        signal.signal(number, _interrupt)
    broker = LocalBroker.create(default_ports=True)
    workload = watcher = None
    try:
        print("Starting a disposable RabbitMQ node (a few seconds)...", flush=True)
        broker.start()
        demo_env = broker_env(broker, port)
        settings = load_settings(
            **{key.removeprefix(ENV_PREFIX).lower(): value for key, value in demo_env.items()}
        )
        workload = Workload(settings, demo_tenants(tenants))
        workload.seed_backlog()
        workload.start()
        print(
            f"Broker: management {broker.management_url} (guest/guest), AMQP port "
            f"{broker.amqp_port}\nWarren: http://localhost:{port}\nCtrl-C stops the console, "
            "the watcher, the workload and the broker.",
            flush=True,
        )
        # It prints where its metrics are.
        watcher = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "watch"], env={**os.environ, **demo_env}
        )
        return _serve({**os.environ, **demo_env}, port)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not abandon the clean-up half way.
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        print("Stopping the watcher, the workload and the broker...", flush=True)
        if watcher:
            stop_console(watcher)
        if workload:
            workload.stop()
        broker.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def broker_env(broker: LocalBroker, console_port: int = 8501) -> dict[str, str]:
    """Every WARREN_ setting, pinned to the demo broker and its folder, so that neither the shell
    nor a .env file can point one of them elsewhere, and all the demo's state goes with it."""
    return {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_AMQP_URL": broker.amqp_url,
        "WARREN_METRICS_URL": broker.metrics_url,
        "WARREN_USERNAME": "guest",
        "WARREN_PASSWORD": "guest",
        "WARREN_VHOST": "/",
        "WARREN_TENANT_EXCHANGE": "tenants",
        "WARREN_REFRESH_SECONDS": "5",
        "WARREN_REQUEST_TIMEOUT": "10",
        "WARREN_TOPOLOGY_SECONDS": "60",
        "WARREN_STATISTICS_UP_TO": "1000",
        # Demo jobs take seconds, not minutes.
        "WARREN_STUCK_AFTER_SECONDS": "20",
        # The demo node's, which is the broker's default.
        "WARREN_CONSUMER_TIMEOUT_SECONDS": "1800",
        "WARREN_DEAD_LETTER_WINDOW_SECONDS": "60",
        "WARREN_REDELIVERY_WINDOW_SECONDS": "120",
        "WARREN_BACKLOG_WINDOW_SECONDS": "120",
        "WARREN_MAX_REDRIVES": "3",
        # Removed with the broker: a new demo starts with no history and an empty audit log.
        "WARREN_HISTORY_DB": str(broker.base_dir / "history.sqlite"),
        "WARREN_AUDIT_DB": str(broker.base_dir / "audit.sqlite"),
        # Empty: the demo's audit log and history are the files above, not a team's database.
        "WARREN_DATABASE_URL": "",
        "WARREN_HISTORY_HOURS": "24",
        # Empty: no Prometheus of the user's draws the demo's charts.
        "WARREN_PROMETHEUS_URL": "",
        "WARREN_READ_ONLY": "false",
        "WARREN_AUTH": "service",
        # For WARREN_AUTH=oidc only; the demo's viewers all use the service user.
        "WARREN_ROLES": '{"viewer": ["*"]}',
        "WARREN_PAYLOAD_ROLE": "operator",
        # Nothing masked: the demo's jobs hold no secrets.
        "WARREN_MASK_HEADERS": "[]",
        "WARREN_MASK_JSON_PATHS": "[]",
        "WARREN_MASK_PATTERNS": "[]",
        "WARREN_LOGIN_KEEP_SECONDS": "28800",
        # The watcher beside the console: its alerts link to this console.
        "WARREN_WATCH_ADDRESS": "127.0.0.1",
        "WARREN_WATCH_PORT": str(free_port(9438)),
        "WARREN_CONSOLE_URL": f"http://localhost:{console_port}",
        "WARREN_WEBHOOK_URL": "",
    }


def _serve(env: dict[str, str], port: int) -> int:
    console = start_console(env, port)
    try:
        return console.wait()
    except KeyboardInterrupt:
        stop_console(console)
        return 0


def start_console(
    env: dict[str, str], port: int, quiet: bool = False, secrets: Path | None = None
) -> subprocess.Popen:
    """The console as a process of its own on `port` (its secrets, such as the identity
    provider's, from `secrets`), returned once it answers; stopped again if anything (a Ctrl-C
    too) interrupts the wait."""
    output = subprocess.DEVNULL if quiet else None
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port)]
    if secrets is not None:
        command += ["--secrets.files", str(secrets)]
    console = subprocess.Popen(
        command,
        env=env,
        cwd=APP.parent,
        stdout=output,
        stderr=output,
    )
    try:
        _wait_until_serving(console, port)
    except BaseException:
        stop_console(console)
        raise
    return console


def _wait_until_serving(console: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while console.poll() is None and time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok:
                return
        # Not listening yet, or listening and too busy to answer within the timeout.
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.3)
    raise WarrenError(f"The console did not start on port {port}.")


def stop_console(console: subprocess.Popen) -> None:
    """Stops the console (or the watcher): SIGTERM, then SIGKILL after 15 s."""
    console.terminate()
    try:
        console.wait(timeout=15)
    except subprocess.TimeoutExpired:
        console.kill()
        console.wait()
