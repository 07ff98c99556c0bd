"""Tenants that publish before anyone bound them: what the tenant exchange dropped, Warren's
capture of what it cannot route, and moving an onboarded tenant's captured messages into its
queue, at least once. On a real broker; counts from AMQP."""

import json

import pytest
import requests

from dashboard.actions.audit import AuditLog
from dashboard.actions.capture import capture, plan_capture, plan_move_captured
from dashboard.actions.moves import run_move
from dashboard.errors import WarrenError
from dashboard.local.workload import declare_tenant
from dashboard.reads.unrouted import capture_names, fetch_unrouted
from tests.support.helpers import (
    drain,
    ready_and_consumers,
    run_cli,
    tenant_with_messages,
    wait_until,
)

GUEST = ("guest", "guest")


def publish(channel, exchange: str, routing_key: str, count: int) -> None:
    """As a producer that does not ask for returns: an unroutable message is dropped unseen."""
    for number in range(count):
        channel.basic_publish(exchange, routing_key, f"message {number}".encode())


def policies(broker) -> str:
    return f"{broker.management_url}/api/policies/%2F"


@pytest.fixture
def tenant_exchange(channel, unique, broker):
    """A tenant exchange with one tenant bound; Warren's capture policy, if set, removed after."""
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "bound", unique("bound"), 0)
    yield exchange
    requests.delete(f"{policies(broker)}/{capture_names(exchange).policy}", auth=GUEST, timeout=10)


def test_the_exchange_s_drops_are_counted_and_capture_keeps_what_follows(
    session_for, channel, tenant_exchange, tmp_path
):
    session = session_for(tenant_exchange=tenant_exchange, audit_db=tmp_path / "audit.sqlite")
    publish(channel, tenant_exchange, "early-bird", 3)
    publish(channel, tenant_exchange, "bound", 1)
    dropped = wait_until(lambda: (u := fetch_unrouted(session)).dropped == 3 and u)
    assert (dropped.capturing, dropped.captured, dropped.ids) == (False, None, [])

    plan = plan_capture(session)
    assert plan.sentence.endswith(
        "The queue keeps at most 10,000: past that the oldest captured are dropped. The 3 "
        "messages it dropped before cannot be recovered."
    )
    capture(session, plan, "tester")
    publish(channel, tenant_exchange, "early-bird", 2)
    publish(channel, tenant_exchange, "later-bird", 1)
    names = capture_names(tenant_exchange)
    wait_until(lambda: ready_and_consumers(channel, names.queue)[0] == 3)

    found = fetch_unrouted(session)
    assert (found.capturing, found.captured) == (True, 3)
    assert [(i.routing_key, i.messages) for i in found.ids] == [
        ("early-bird", 2),
        ("later-bird", 1),
    ]
    # Listing the ids left every message where it was, in its order.
    assert [body for body, _ in drain(channel, names.queue)] == [
        b"message 0", b"message 1", b"message 0",
    ]  # fmt: skip
    [record] = AuditLog(session.settings.audit_db).records(10)
    assert (record.action, record.target, record.outcome) == ("capture", tenant_exchange, "ok")
    assert plan_capture(session).already


def test_another_policy_on_the_exchange_is_refused_not_replaced(
    session_for, broker, tenant_exchange, unique
):
    session = session_for(tenant_exchange=tenant_exchange)
    other = unique("federation")
    policy = {
        "pattern": f"^{tenant_exchange}$",
        "apply-to": "exchanges",
        "definition": {"alternate-exchange": "elsewhere"},
    }
    requests.put(f"{policies(broker)}/{other}", json=policy, auth=GUEST, timeout=10)
    try:
        wait_until(lambda: session.client.get_exchange("/", tenant_exchange).get("policy"))
        with pytest.raises(WarrenError) as refused:
            plan_capture(session)
    finally:
        requests.delete(f"{policies(broker)}/{other}", auth=GUEST, timeout=10)
    assert str(refused.value).startswith(
        f"Exchange {tenant_exchange!r} has policy {other!r}, and only one policy applies to an "
        "exchange: Warren's would replace it."
    )


def test_an_onboarded_tenant_s_captured_messages_move_into_its_queue(
    session_for, channel, tenant_exchange, unique, tmp_path, broker
):
    session = session_for(tenant_exchange=tenant_exchange, audit_db=tmp_path / "audit.sqlite")
    capture(session, plan_capture(session), "tester")
    names = capture_names(tenant_exchange)
    for tenant, messages in (("acme", 3), ("globex", 2), ("acme", 1)):
        publish(channel, tenant_exchange, tenant, messages)
    wait_until(lambda: ready_and_consumers(channel, names.queue)[0] == 6)
    with pytest.raises(WarrenError, match="is not bound to exchange"):
        plan_move_captured(session, "acme")
    queue = declare_tenant(channel, tenant_exchange, "acme", queue=unique("acme"))

    plan = plan_move_captured(session, "acme")
    assert (plan.ready, plan.matching, plan.to) == (6, 4, queue)
    moved = run_move(session, plan, "tester")

    assert moved.clean and moved.counts == {"moved": 4, "kept": 2, "failed": 0, "skipped": 0}
    assert [(b, p.headers) for b, p in drain(channel, queue)] == [
        (b"message 0", None), (b"message 1", None), (b"message 2", None), (b"message 0", None),
    ]  # fmt: skip
    assert ready_and_consumers(channel, names.queue)[0] == 2
    left = fetch_unrouted(session)
    assert [(i.routing_key, i.messages) for i in left.ids] == [("globex", 2)]
    record = AuditLog(session.settings.audit_db).records(1)[0]
    assert (record.action, record.counts["moved"]) == ("move-captured", 4)


def test_the_cli_lists_and_captures(broker, channel, tenant_exchange, tmp_path):
    publish(channel, tenant_exchange, "early", 2)
    audit = tmp_path / "audit.sqlite"

    def listed():
        done = run_cli(broker, audit, "unrouted", "--json", "--exchange", tenant_exchange)
        assert (done.returncode, done.stderr) == (0, "")
        return (record := json.loads(done.stdout))["dropped"] == 2 and record

    assert wait_until(listed, what="the CLI to count 2 dropped")["capturing"] is False
    refused = run_cli(broker, audit, "capture", "--exchange", tenant_exchange)
    assert refused.returncode == 1 and "Nothing was changed: add --yes" in refused.stderr
    done = run_cli(broker, audit, "capture", "--yes", "--exchange", tenant_exchange)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"Capturing: what exchange {tenant_exchange!r} cannot route")
    publish(channel, tenant_exchange, "early", 1)
    wait_until(lambda: ready_and_consumers(channel, f"{tenant_exchange}.unrouted")[0] == 1)

    table = run_cli(broker, audit, "unrouted", "--exchange", tenant_exchange)
    assert table.stdout.splitlines()[1:] == [
        "TENANT ID  CAPTURED",
        "early             1",
    ]


def test_the_console_captures_and_offers_the_move_once_the_tenant_is_onboarded(
    console, channel, tenant_exchange, unique, tmp_path
):
    audit = tmp_path / "audit.sqlite"
    newco = unique("newco")
    publish(channel, tenant_exchange, newco, 2)
    app = console(
        page="pages/onboarding.py", WARREN_TENANT_EXCHANGE=tenant_exchange,
        WARREN_AUDIT_DB=str(audit),
    )  # fmt: skip
    wait_until(lambda: "dropped 2 messages" in texts(app.run()), what="the 2 dropped")

    app.button(key="capture-exchange").click().run()
    assert "Capture sets policy" in texts(app)
    app.button(key="capture-go").click().run()
    publish(channel, tenant_exchange, newco, 3)
    wait_until(lambda: "holds 3." in texts(app.run()), what="the 3 captured")
    app.button(key="list-captured").click().run()
    assert f"{newco}: 3 captured messages; onboard it to move them into its queue." in texts(app)

    app.text_area(key="bind-ids").set_value(newco).run()
    app.button(key="bind-tenants").click().run()
    app.button(key="bind-go").click().run()
    offer = app.button(key=f"move-captured-{newco}")
    assert (
        offer.label.replace("\\", "") == f"{newco}: 3 captured messages: move them into its queue…"
    )
    offer.click().run()
    app.button(key=f"move-captured-go-{newco}").click().run()
    wait_until(lambda: len(app.run().success) > 1, what="the move to finish")

    assert not app.exception
    assert app.success[1].value == (
        f"Moved 3 captured messages of tenant '{newco}' into 'tenant.{newco}' (3 ready there "
        f"now); 0 for other ids stay in '{tenant_exchange}.unrouted'."
    )
    assert ready_and_consumers(channel, f"tenant.{newco}")[0] == 3
    actions = [record.action for record in AuditLog(audit).records(10)]
    assert actions == ["move-captured", "bind", "capture"]


def texts(app) -> str:
    """The page's words, without the escapes that keep broker names from being markdown."""
    words = " ".join(element.value for element in (*app.markdown, *app.caption))
    return words.replace("\\", "")
