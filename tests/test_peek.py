"""Peek on a real broker: x-death from real dead-lettering, awkward payloads shown safely,
every message still in the queue afterwards, and quorum queues only when confirmed (the console
offers the confirmation only where a quorum queue is to be peeked) by a user who may act, audited,
with what the delivery limit took."""

import json
import subprocess
import sys

import pika
import pytest

from dashboard.actions.audit import AuditLog
from dashboard.actions.peek import peek, peek_sentence
from dashboard.errors import ConfirmationRequired, ReadOnly
from dashboard.local.workload import declare_tenant
from dashboard.reads.overview import fetch_overview
from dashboard.reads.peek import SHOW_CHARS, PeekResult, may_need_confirmation, plan_peek
from pages.components.formatting import literal
from tests.support.helpers import (
    fill,
    message_labels,
    ready_and_consumers,
    run_cli,
    tenant_with_messages,
    wait_until,
)

QUORUM_CONSENT = "I accept the cost on quorum queues"


def peeked(session, queue: str, count: int, confirmed: bool = False) -> PeekResult:
    return peek(session, plan_peek(session, queue), count, "guest (test)", confirmed)


def put(channel, queue: str, body: bytes, **properties) -> None:
    channel.basic_publish("", queue, body, pika.BasicProperties(**properties), mandatory=True)


def test_x_death_from_reject_and_from_ttl_expiry(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    worker = pod("pod-peek")
    assert worker.hold(queue, prefetch=1, expect=1) == 1
    worker.reject_all(queue)
    short_lived = unique("short-lived")
    channel.queue_declare(
        short_lived,
        arguments={
            "x-message-ttl": 1,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{queue}.dlq",
        },
    )
    put(channel, short_lived, b"expired", headers={"trace": "t-1"})
    dead_letters = f"{queue}.dlq"
    _wait_for_ready(channel, dead_letters, 2)

    result = peeked(session_for(), dead_letters, 5)

    rejected, expired = result.messages
    [death] = rejected.deaths
    assert (death.reason, death.count, death.queue, death.exchange, death.routing_keys) == (
        "rejected",
        1,
        queue,
        exchange,
        ["acme"],
    )
    assert death.time is not None
    [death] = expired.deaths
    assert (death.reason, death.queue, death.exchange, death.routing_keys) == (
        "expired",
        short_lived,
        "",
        [short_lived],
    )
    assert expired.headers["trace"] == "t-1"
    assert "x-death" not in expired.headers
    _wait_for_ready(channel, dead_letters, 2)


def _wait_for_ready(channel, queue: str, count: int) -> None:
    """Until AMQP says `queue` has `count` ready messages and no consumer (a peek's own
    short-lived consumer on a quorum queue lingers for a moment)."""
    for _ in range(200):
        if ready_and_consumers(channel, queue) == (count, 0):
            return
        channel.connection.sleep(0.05)
    pytest.fail(f"{queue} never had {count} ready messages and no consumer")


PAYLOADS = {
    "binary": bytes(range(256)) * 2,
    "invalid-utf8": b"caf\xe9 \xff\xfe",
    "script": b"<script>alert('x')</script>",
    "markdown": b"# Title\n[link](http://evil.example) **bold** :red[x] $y$",
    "json": b'{"tenant": "acme", "items": [1, 2]}',
    "empty": b"",
}


def test_awkward_payloads_are_shown_as_plain_data(session_for, channel, unique):
    queue = unique("payloads")
    channel.queue_declare(queue)
    for name, body in PAYLOADS.items():
        put(channel, queue, body, message_id=name)

    session = session_for()
    first = peeked(session, queue, len(PAYLOADS))
    result = peeked(session, queue, len(PAYLOADS))

    assert {message.redelivered for message in first.messages} == {False}
    assert {message.redelivered for message in result.messages} == {True}
    shown = {message.properties["message_id"]: message for message in result.messages}
    assert {name: shown[name].kind for name in PAYLOADS} == {
        "binary": "binary",
        "invalid-utf8": "binary",
        "script": "text",
        "markdown": "text",
        "json": "json",
        "empty": "empty",
    }
    assert shown["binary"].shown.splitlines()[0] == (
        "00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................"
    )
    assert shown["binary"].truncated
    assert shown["script"].shown == "<script>alert('x')</script>"
    assert shown["json"].shown == '{\n  "tenant": "acme",\n  "items": [\n    1,\n    2\n  ]\n}'
    _wait_for_ready(channel, queue, len(PAYLOADS))


def test_ten_megabyte_payload_is_cut_not_fetched_whole(session_for, channel, unique):
    queue = unique("big")
    channel.queue_declare(queue)
    put(channel, queue, b"x" * 10_485_760)

    [message] = peeked(session_for(), queue, 1).messages

    assert (message.size, message.kind, message.truncated) == (10_485_760, "text", True)
    assert message.shown == "x" * SHOW_CHARS
    _wait_for_ready(channel, queue, 1)


def test_quorum_queue_needs_confirmation(session_for, channel, unique):
    queue = unique("quorum")
    channel.queue_declare(
        queue, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 5}
    )
    put(channel, queue, b"job")
    session = session_for()
    with pytest.raises(ConfirmationRequired) as caught:
        peeked(session, queue, 1)
    assert "Its delivery limit is 5." in str(caught.value)
    assert ready_and_consumers(channel, queue) == (1, 0)

    [first] = peeked(session, queue, 1, confirmed=True).messages
    [second] = peeked(session, queue, 1, confirmed=True).messages

    # Each peek returned the message to the queue, and each return counted as a delivery
    # (RabbitMQ 3.10 sends the count from 0; 4.0 leaves it out until it is 1).
    assert (first.delivery_count or 0, second.delivery_count) == (0, 1)
    _wait_for_ready(channel, queue, 1)


def test_peek_cli(broker, channel, unique):
    queue = unique("cli-peek")
    channel.queue_declare(queue)
    put(channel, queue, b'{"job": 1}', priority=3)
    command = [sys.executable, "-m", "dashboard", "peek", "--queue", queue, "--count", "3"]
    environment = {"WARREN_MANAGEMENT_URL": broker.management_url, "PATH": "/usr/bin:/bin"}

    done = subprocess.run(
        [*command, "--json"], env=environment, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert [m["kind"] for m in result["messages"]] == ["json"]
    assert result["messages"][0]["properties"]["priority"] == 3

    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    assert done.stderr.startswith("warren: Peeking takes each message from the queue")
    assert '      "job": 1' in done.stdout.splitlines()


def test_publisher_set_x_death_junk_does_not_break_peek(session_for, channel, unique):
    queue = unique("junk-death")
    channel.queue_declare(queue)
    put(channel, queue, b"a", headers={"x-death": "not a list"})
    put(channel, queue, b"b", headers={"x-death": [{"count": "many", "reason": "rejected"}]})

    result = peeked(session_for(), queue, 2)

    assert [(m.shown, m.deaths) for m in result.messages] == [("a", []), ("b", [])]


def test_peek_cli_refuses_a_quorum_queue_without_yes(broker, channel, unique, tmp_path):
    queue = unique("quorum-cli")
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    put(channel, queue, b"job")
    audit = tmp_path / "audit.sqlite"

    refused = run_cli(broker, audit, "peek", "--queue", queue, "--json")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"warren: Queue {queue!r} is a quorum queue.")
    assert refused.stderr.strip().endswith("Confirm to peek anyway.")
    _wait_for_ready(channel, queue, 1)

    confirmed = run_cli(broker, audit, "peek", "--queue", queue, "--json", "--yes")
    assert confirmed.returncode == 0, confirmed.stderr
    assert [m["shown"] for m in json.loads(confirmed.stdout)["messages"]] == ["job"]
    assert [(r.action, r.outcome) for r in AuditLog(audit).records()] == [("peek", "ok")]


def test_a_quorum_queue_without_a_limit_has_the_limit_of_its_version(
    session_for, channel, unique, broker_version
):
    queue = unique("quorum-unlimited")
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    version = broker_version.text
    expected = {
        3: f"It has no delivery limit (none is set, and RabbitMQ {version} has no default).",
        4: f"Its delivery limit is 20, RabbitMQ {version}'s default: none is set.",
    }[broker_version.major]

    with pytest.raises(ConfirmationRequired) as caught:
        peeked(session_for(), queue, 1)

    assert expected in str(caught.value)


def classic_tenant_with_quorum_dead_letters(channel, exchange: str, tenant: str, queue: str):
    dead_letters = f"{exchange}.dlx"
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.exchange_declare(dead_letters, "direct", durable=True)
    channel.queue_declare(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(f"{queue}.dlq", dead_letters, routing_key=tenant)
    arguments = {"x-dead-letter-exchange": dead_letters, "x-dead-letter-routing-key": tenant}
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.queue_bind(queue, exchange, routing_key=tenant)


def test_the_confirmation_is_needed_only_where_a_quorum_queue_is(session_for, channel, unique):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "classic", unique("classic"), 0)
    declare_tenant(channel, exchange, "alone", unique("alone"), dead_letters=False)
    classic_tenant_with_quorum_dead_letters(channel, exchange, "dlq-quorum", unique("dlq-quorum"))
    channel.queue_declare(unique("quorum"), durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(unique("quorum"), exchange, routing_key="quorum")
    session = session_for(tenant_exchange=exchange)

    rows = fetch_overview(session).rows

    assert {row.tenant: may_need_confirmation(session, row) for row in rows} == {
        "classic": False,
        "alone": False,
        "dlq-quorum": True,
        "quorum": True,
    }


def test_the_tenant_page_offers_the_confirmation_for_a_quorum_dead_letter_queue(
    channel, unique, console
):
    exchange, queue = unique("tenants"), unique("acme")
    classic_tenant_with_quorum_dead_letters(channel, exchange, "acme", queue)
    put(channel, queue, b"x")
    app = console({"tenant": "acme"}, page="pages/tenant.py", WARREN_TENANT_EXCHANGE=exchange)
    submit = f"FormSubmitter:peek-{queue}-Peek"

    app.radio[0].set_value(f"{queue}.dlq")
    app.button(key=submit).click().run()
    refused = [error.value for error in app.error]
    [consent] = [box for box in app.checkbox if box.label == QUORUM_CONSENT]
    consent.check()
    app.button(key=submit).click().run()

    assert not app.exception
    assert refused[0].startswith(literal(f"Queue '{queue}.dlq' is a quorum queue."))
    assert app.error == []
    assert app.info[-1].value == f"Queue {literal(f'{queue}.dlq')} has no ready message."
    app.radio[0].set_value(queue)
    app.button(key=submit).click().run()
    assert message_labels(app) == ["#1 · 1 byte · text"]


def quorum_with_limit(channel, queue: str, limit: int, messages: int, **arguments) -> None:
    arguments = {"x-queue-type": "quorum", "x-delivery-limit": limit} | arguments
    channel.queue_declare(queue, durable=True, arguments=arguments)
    fill(channel, queue, messages)


def test_a_read_only_user_may_not_peek_a_quorum_queue_and_the_attempt_is_audited(
    session_for, channel, unique, broker_user, tmp_path
):
    queue = unique("quorum-limited")
    quorum_with_limit(channel, queue, 2, 5)
    user, password = broker_user("monitoring")
    audit = tmp_path / "audit.sqlite"
    session = session_for(username=user, password=password, audit_db=audit)

    for confirmed in (False, True, True, True):
        with pytest.raises(ReadOnly, match=f"^User {user!r} \\(tags: monitoring\\) may only"):
            peeked(session, queue, 5, confirmed)

    assert ready_and_consumers(channel, queue) == (5, 0)
    records = AuditLog(audit).records()
    assert [(r.action, r.target, r.outcome) for r in records] == [("peek", queue, "refused")] * 4


@pytest.mark.parametrize("dead_letters", [False, True])
def test_a_quorum_peek_says_what_the_delivery_limit_took(
    session_for, channel, unique, tmp_path, dead_letters
):
    queue, dlx = unique("quorum-peeked"), unique("dlx")
    extra = {}
    if dead_letters:
        channel.exchange_declare(dlx, "fanout", durable=True)
        channel.queue_declare(f"{queue}.dlq", durable=True)
        channel.queue_bind(f"{queue}.dlq", dlx)
        extra = {"x-dead-letter-exchange": dlx}
    quorum_with_limit(channel, queue, 2, 5, **extra)
    audit = tmp_path / "audit.sqlite"
    session = session_for(audit_db=audit)
    plan = plan_peek(session, queue)

    first, second, third = (peeked(session, queue, 5, confirmed=True) for _ in range(3))

    assert [(r.past_limit, r.at_limit, r.ready_after) for r in (first, second, third)] == [
        (0, 0, 5),
        (0, 5, 5),
        (5, 0, 0),
    ]
    fate = f"dead-lettered through exchange {dlx!r}" if dead_letters else "dropped for good"
    assert fate in plan.sentence
    assert peek_sentence(plan, third) == (
        "Each of the 5 messages shown counted one delivery. 5 messages had reached the delivery "
        f"limit of 2 and went past it when put back: {plan.over_limit_fate}. The queue holds 0 "
        "ready now."
    )
    # The peek's consumers are gone once the queue has handled its channels' closing: on a
    # loaded 4.0 node, a moment after the peek returned.
    wait_until(
        lambda: ready_and_consumers(channel, queue) == (0, 0), what="the queue empty, unconsumed"
    )
    if dead_letters:
        _wait_for_ready(channel, f"{queue}.dlq", 5)
    latest = AuditLog(audit).records()[0]
    assert (latest.action, latest.outcome) == ("peek", "ok")
    assert latest.counts == {"peeked": 5, "past_limit": 5, "ready_after": 0}


def test_peek_cli_refuses_a_read_only_user_a_quorum_queue_and_leaves_classic_ones_open(
    broker, channel, unique, broker_user, tmp_path
):
    quorum, classic = unique("quorum-cli-ro"), unique("classic-cli-ro")
    quorum_with_limit(channel, quorum, 2, 3)
    channel.queue_declare(classic)
    fill(channel, classic, 1)
    user, password = broker_user("monitoring")
    env = {"WARREN_USERNAME": user, "WARREN_PASSWORD": password}

    refused = run_cli(broker, tmp_path / "a", "peek", "--queue", quorum, "--yes", **env)
    looked = run_cli(broker, tmp_path / "a", "peek", "--queue", classic, "--json", **env)

    assert refused.returncode == 1
    assert refused.stderr.startswith(f"warren: User {user!r} (tags: monitoring) may only look")
    assert refused.stderr.endswith("nothing was changed.\n")
    assert looked.returncode == 0, looked.stderr
    assert len(json.loads(looked.stdout)["messages"]) == 1
    assert ready_and_consumers(channel, quorum) == (3, 0)
