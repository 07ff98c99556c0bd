"""Who may do what: a user tagged only `monitoring` reads everything and changes nothing, by any
path; WARREN_READ_ONLY turns writes off for everyone; the console logs each session in as its own
broker user."""

import json

import pytest

from dashboard.actions.access import access_from, change
from dashboard.actions.audit import AuditLog
from dashboard.errors import ReadOnly
from dashboard.reads.overview import fetch_overview
from tests.support.helpers import (
    message_labels,
    queue_counts,
    run_cli,
    tenant_with_messages,
    wait_until,
)


@pytest.mark.parametrize(
    ("tags", "may_act"),
    [
        (["administrator"], True),
        (["policymaker", "monitoring"], True),
        ("administrator,monitoring", True),  # brokers before 3.9 answer a string
        (["management"], False),
        (["monitoring"], False),
        ([], False),
        ("", False),
    ],
)
def test_only_administrators_and_policymakers_may_act(settings_for, tags, may_act):
    access = access_from(settings_for(), {"name": "someone", "tags": tags})
    assert access.may_act is may_act
    if not may_act:
        assert access.refusal.startswith("User 'someone' (")
        assert "only users tagged administrator or policymaker" in access.refusal


def test_read_only_refuses_an_administrator_and_records_it(session_for, tmp_path):
    session = session_for(read_only=True, audit_db=tmp_path / "audit.sqlite")
    with (
        pytest.raises(ReadOnly, match=r"^Warren is read-only here \(WARREN_READ_ONLY=true\): "),
        change(session, "guest (test)", "purge", "some-queue", {}),
    ):
        pytest.fail("the change ran")
    [record] = AuditLog(tmp_path / "audit.sqlite").records()
    assert (record.action, record.outcome) == ("purge", "refused")


def test_a_monitoring_user_reads_everything_and_every_write_is_refused(
    broker, settings_for, session_for, channel, unique, pod, broker_user, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    channel.basic_publish("", f"{queue}.dlq", b"dead", mandatory=True)
    holder = pod(unique("pod"))
    assert holder.hold(queue, prefetch=1, expect=1) == 1
    user, password = broker_user("monitoring")
    audit = tmp_path / "audit.sqlite"
    env = {"WARREN_USERNAME": user, "WARREN_PASSWORD": password, "WARREN_TENANT_EXCHANGE": exchange}
    wait_until(
        lambda: holder.name in run_cli(broker, audit, "consumers", "--json", **env).stdout,
        what="the pod in the consumer stats",
    )

    reads = [["tenants", "--json"], ["peek", "--queue", queue, "--json"], ["audit", "--json"]]
    writes = [
        ["purge", "--queue", queue],
        ["requeue", "--from", f"{queue}.dlq", "--to", queue],
        ["republish", "--queue", queue, "--priority", "5"],
        ["unbind", "--tenant", "acme"],
        ["requeue", "--connection", holder.name],
    ]
    for read in reads:
        done = run_cli(broker, audit, *read, **env)
        assert done.returncode == 0, (read, done.stderr)
    for write in writes:
        done = run_cli(broker, audit, *write, "--yes", **env)
        assert done.returncode == 1, write
        assert done.stderr == (
            f"warren: User {user!r} (tags: monitoring) may only look: only users tagged "
            "administrator or policymaker may change anything through Warren: nothing was "
            "changed.\n"
        ), write
    bind = run_cli(broker, audit, "bind", "--tenant", unique("new"), "--yes", "--json", **env)

    assert bind.returncode == 1
    [row] = json.loads(bind.stdout)
    assert row["outcome"] == "failed" and "may only look" in row["error"]
    assert queue_counts(settings_for(), queue) == (2, 1)
    assert queue_counts(settings_for(), f"{queue}.dlq") == (1, 0)
    assert holder.connection.is_open
    overview = fetch_overview(session_for(tenant_exchange=exchange))
    assert [row.queue for row in overview.rows] == [queue]
    outcomes = [(r.action, r.outcome, r.actor.split(" ")[0]) for r in AuditLog(audit).records()]
    # A peek shows payloads: recorded too, as a read that went through.
    assert sorted(outcomes) == sorted(
        [(write[0] if write[1] != "--connection" else "requeue-connection", "refused", user)
         for write in writes] + [("bind", "refused", user), ("peek", "ok", user)]
    )  # fmt: skip


def log_in(app, user: str, password: str):
    app.text_input(key="login-user").set_value(user)
    app.text_input(key="login-password").set_value(password)
    return app.button(key="FormSubmitter:login-Log in").click().run()


def shown_text(app) -> str:
    return " ".join(str(element.value) for kind in ("markdown", "error", "info", "caption")
                    for element in getattr(app, kind))  # fmt: skip


def test_the_console_logs_in_as_the_broker_user_and_shows_only_what_it_may_do(
    channel, unique, broker_user, console
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    user, password = broker_user("monitoring")
    app = console(
        {"tenant": "acme"}, page="pages/tenant.py", WARREN_AUTH="login",
        WARREN_TENANT_EXCHANGE=exchange,
    )  # fmt: skip
    assert [title.value for title in app.title] == ["Warren"]
    assert not app.get("tab")

    log_in(app, user, "wrong-" + password)
    assert app.error[0].value.replace("\\", "").endswith("wrong user name or password (401).")
    assert password not in shown_text(app)

    log_in(app, user, password)
    assert not app.exception
    assert any(f"Read-only: User {user!r}" in info.value.replace("\\", "") for info in app.info)
    keys = [button.key for button in app.button]
    assert f"purge-{queue}" not in keys and f"republish-{queue}" not in keys
    onboarding = app.switch_page("pages/onboarding.py").run()
    assert not onboarding.get("tab")  # read-only: neither bind nor offboard is offered
    for page in ("pages/overview.py", "pages/consumers.py", "pages/audit.py"):
        seen = app.switch_page(page).run()
        assert not seen.exception and not seen.error, page


def test_an_administrator_who_logs_in_gets_the_actions(channel, unique, console):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    app = console(
        {"tenant": "acme"}, page="pages/tenant.py", WARREN_AUTH="login",
        WARREN_TENANT_EXCHANGE=exchange,
    )  # fmt: skip

    log_in(app, "guest", "guest")

    assert not app.exception
    assert f"purge-{queue}" in [button.key for button in app.button]
    assert "recorded in the audit log as guest (console)" in shown_text(app).replace("\\", "")


def test_a_user_without_the_vhost_hears_the_broker_s_refusal_and_it_is_audited(
    broker, settings_for, channel, unique, broker_user, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    channel.basic_publish("", f"{queue}.dlq", b"dead", mandatory=True)
    user, password = broker_user("administrator", permissions=None)
    audit = tmp_path / "audit.sqlite"
    env = {"WARREN_USERNAME": user, "WARREN_PASSWORD": password, "WARREN_TENANT_EXCHANGE": exchange}
    writes = [
        ("purge", ["--queue", queue]),
        ("requeue", ["--from", f"{queue}.dlq", "--to", queue]),
        ("republish", ["--queue", queue, "--priority", "5"]),
    ]

    for action, args in writes:
        done = run_cli(broker, audit, action, *args, "--yes", **env)
        assert done.returncode == 1, done.stderr
        assert "refused access to vhost '/'" in done.stderr, done.stderr
        assert f"access to vhost '/' refused for user '{user}'" in done.stderr, done.stderr

    records = AuditLog(audit).records()
    assert [(r.action, r.outcome) for r in reversed(records)] == [
        (action, "failed") for action, _ in writes
    ]
    assert queue_counts(settings_for(), queue) == (2, 0)
    assert queue_counts(settings_for(), f"{queue}.dlq") == (1, 0)


@pytest.mark.parametrize("tags", ["policymaker", "management"])
def test_a_user_without_monitoring_gets_every_panel_it_may_read_and_hears_what_is_hidden(
    channel, unique, broker_user, console, pod, tags
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    pod(unique("pod")).hold(queue, 1, 1)
    user, password = broker_user(tags)
    app = console(
        {"tenant": "acme"}, page="pages/tenant.py", WARREN_AUTH="login",
        WARREN_TENANT_EXCHANGE=exchange,
    )  # fmt: skip

    tenant = log_in(app, user, password)

    assert not tenant.exception and not tenant.error
    hidden = f"User {user!r} has no monitoring tag, so the broker shows it only the consumers"
    assert any(hidden in warning.value.replace("\\", "") for warning in tenant.warning)
    assert "No consumer on this queue" not in shown_text(tenant)
    assert tenant.dataframe[0].value.iloc[0]["Value"] == "classic"  # the Settings tab
    next(button for button in tenant.button if button.label == "Peek").click().run()
    assert not tenant.exception and not tenant.error
    assert len(message_labels(tenant)) == 2  # the two ready messages; the pod holds the third
    nodes = app.switch_page("pages/nodes.py").run()
    assert not nodes.exception and not nodes.error
    assert [i.value.replace("\\", "") for i in nodes.info] == [
        f"User {user!r} may not read the cluster's nodes: the broker shows them only to users "
        "tagged monitoring or administrator. Memory and disk alarms are not shown to it either."
    ]
