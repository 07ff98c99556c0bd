"""Running Warren's CLI as a user would: a real process with its own environment."""

import os
import subprocess
import sys

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
