"""Running Warren's CLI as a user would: a real process with its own environment."""

import os
import subprocess
import sys

from dashboard.amqp import ready_count
from tests.conftest import wait_until

DASHBOARD = (sys.executable, "-m", "dashboard")


def cli_environment(broker, audit_db=None, **env: str) -> dict[str, str]:
    """This process's environment without any WARREN_ setting, pointed at `broker`."""
    environment = {name: value for name, value in os.environ.items() if "WARREN_" not in name}
    environment |= {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_AMQP_URL": broker.amqp_url,
    }
    if audit_db is not None:
        environment["WARREN_AUDIT_DB"] = str(audit_db)
    return environment | env


def run_cli(broker, audit_db, *args: str, entry=DASHBOARD, timeout: float = 120, **env: str):
    """Run the CLI to its end; without `audit_db` the audit log goes to the broker's directory."""
    return subprocess.run(
        [*entry, *args],
        env=cli_environment(broker, audit_db, **env),
        cwd=broker.base_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ready_once_returned(settings, queues: list[str], count: int) -> list[int]:
    """Ready counts of `queues` once at least `count` messages are ready among them: the broker
    returns a killed client's unacked messages to ready a moment after the process dies."""
    counts: list[int] = []

    def all_back() -> bool:
        counts[:] = [ready_count(settings, queue) for queue in queues]
        return sum(counts) >= count

    wait_until(all_back, what=f"{count:,} messages ready in {', '.join(queues)}")
    return counts
