"""A password never shows: not in CLI output (text or JSON, success or failure), the audit log, the
history file, or the page."""

from dashboard.local.rabbitmq import free_port
from tests.support.helpers import run_cli, tenant_with_messages


def test_the_password_appears_in_no_output_and_no_file(
    broker, channel, unique, broker_user, console, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    user, password = broker_user("administrator")
    audit = tmp_path / "audit.sqlite"
    env = {
        "WARREN_USERNAME": user,
        "WARREN_PASSWORD": password,
        "WARREN_TENANT_EXCHANGE": exchange,
        "WARREN_HISTORY_DB": str(tmp_path / "history.sqlite"),
    }
    down = f"http://127.0.0.1:{free_port()}"
    runs = [
        run_cli(broker, audit, *command, **env | extra)
        for command, extra in [
            (["tenants", "--json"], {}),
            (["tenants"], {}),
            (["consumers", "--json"], {}),
            (["peek", "--queue", queue, "--json"], {}),
            (["purge", "--queue", queue, "--dry-run", "--json"], {}),
            (["republish", "--queue", queue, "--priority", "3", "--yes", "--json"], {}),
            (["audit", "--json"], {}),
            (["tenants"], {"WARREN_MANAGEMENT_URL": down}),
            (["purge", "--queue", queue, "--yes"], {"WARREN_AMQP_URL": f"amqp://127.0.0.1:{free_port()}/"}),
            (["tenants"], {"WARREN_AMQP_URL": f"amqp://{user}:{password}@127.0.0.1:1/%2F"}),
            (["tenants"], {"WARREN_PASSWORD": password + "-wrong"}),
        ]
    ]  # fmt: skip
    app = console(page="pages/overview.py", **env)

    assert [run.returncode for run in runs] == [0] * 7 + [1, 1, 0, 1]
    for run in runs:
        assert password not in run.stdout + run.stderr, run.args
    assert password.encode() not in audit.read_bytes()
    assert password.encode() not in (tmp_path / "history.sqlite").read_bytes()
    assert not app.exception
    shown = [str(getattr(element, "value", "")) for element in app.main] + [
        str(getattr(element, "value", "")) for element in app.sidebar
    ]
    assert password not in " ".join(shown)
