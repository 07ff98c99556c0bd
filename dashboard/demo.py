"""`warren demo`: a disposable local broker, a live workload, and the console on top of it.

Ctrl-C stops all three and leaves nothing running.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from dashboard.localbroker import LocalBroker
from dashboard.settings import ENV_PREFIX, load_settings
from dashboard.workload import DEMO_TENANTS, Workload

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def run_demo(port: int, tenants: int) -> int:
    # A terminal closing or `kill` must clean up like Ctrl-C does.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _interrupt)
    print("Starting a disposable RabbitMQ node (about 10 s)...", flush=True)
    broker = LocalBroker.create(default_ports=True).start()
    workload = None
    try:
        demo_env = broker_env(broker)
        settings = load_settings(
            **{key.removeprefix(ENV_PREFIX).lower(): value for key, value in demo_env.items()}
        )
        workload = Workload(settings, list(DEMO_TENANTS[: max(1, tenants)]))
        workload.seed_backlog()
        workload.start()
        print(
            f"Broker: management {broker.management_url} (guest/guest), AMQP port "
            f"{broker.amqp_port}\nWarren: http://localhost:{port}\nCtrl-C stops the console, "
            "the workload and the broker.",
            flush=True,
        )
        return _serve({**os.environ, **demo_env}, port)
    except KeyboardInterrupt:
        return 0
    finally:
        print("Stopping the workload and the broker...", flush=True)
        if workload:
            workload.stop()
        broker.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def broker_env(broker: LocalBroker) -> dict[str, str]:
    """The WARREN_ settings that point the console at the demo broker, whatever the shell has."""
    return {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_AMQP_URL": f"amqp://127.0.0.1:{broker.amqp_port}/%2F",
        "WARREN_USERNAME": "guest",
        "WARREN_PASSWORD": "guest",
        "WARREN_VHOST": "/",
        "WARREN_REFRESH_SECONDS": "5",
    }


def _serve(env: dict[str, str], port: int) -> int:
    console = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port)],
        env=env,
        cwd=APP.parent,
    )
    try:
        return console.wait()
    except KeyboardInterrupt:
        console.terminate()
        console.wait(timeout=15)
        return 0
