"""`warren republish` on a real broker: in place it ends, with exact counts, every message
carrying the new priority and its original properties and headers; warnings about targets."""

import json
import signal
import subprocess

from dashboard.actions.audit import AuditLog
from dashboard.actions.mover import MAX_WINDOW
from dashboard.errors import NotFound
from tests.support.helpers import (
    DASHBOARD,
    cli_environment,
    drain,
    fill,
    queue_counts,
    ready_count,
    ready_once_returned,
    run_cli,
    wait_until,
)


def test_republish_in_place_ends_with_every_message_at_the_new_priority(
    broker, settings_for, channel, unique, tmp_path
):
    queue = unique("jobs")
    channel.queue_declare(queue, durable=True, arguments={"x-max-priority": 10})
    fill(channel, queue, 300, priority=1, content_type="application/json")

    done = run_cli(
        broker, tmp_path / "audit.sqlite", "republish", "--queue", queue, "--priority", "9",
        "--yes", "--json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "dry_run": False,
        "moved": 300,
        "failed": 0,
        "holding_queue": None,
        "warnings": [],
    }
    assert queue_counts(settings_for(), queue) == (300, 0)
    messages = drain(channel, queue)
    assert {properties.priority for _, properties in messages} == {9}
    assert sorted(int(properties.headers["n"]) for _, properties in messages) == list(range(300))
    assert {properties.content_type for _, properties in messages} == {"application/json"}
    assert {p.message_id for _, p in messages} == {f"m-{n}" for n in range(300)}
    [record] = AuditLog(tmp_path / "audit.sqlite").records()
    assert (record.action, record.outcome, record.counts) == (
        "republish",
        "ok",
        {"moved": 300, "failed": 0, f"ready:{queue}": 300},  # read back after the move
    )


def test_warnings_for_a_target_without_priorities_or_below_the_asked_one(
    broker, channel, unique, tmp_path
):
    source, plain, low = unique("src"), unique("plain"), unique("low")
    channel.queue_declare(source, durable=True)
    channel.queue_declare(plain, durable=True)
    channel.queue_declare(low, durable=True, arguments={"x-max-priority": 3})
    fill(channel, source, 2)
    dry = ["republish", "--queue", source, "--priority", "7", "--dry-run", "--json"]

    to_plain = json.loads(run_cli(broker, tmp_path / "a", *dry, "--to", plain).stdout)
    to_low = json.loads(run_cli(broker, tmp_path / "a", *dry, "--to", low).stdout)

    assert to_plain["warnings"] == [
        f"Queue {plain!r} has no x-max-priority: the broker will ignore the new priority."
    ]
    assert to_low["warnings"] == [
        f"Priority 7 is above the x-max-priority of {low!r} (3): the broker treats it as 3."
    ]
    assert queue_counts_of(channel, source, plain, low) == [2, 0, 0]


def test_republish_to_the_tenant_exchange_with_a_routing_key(
    broker, settings_for, channel, unique, tmp_path
):
    exchange, tenant = unique("tenants"), unique("acme")
    source = unique("parked")
    channel.queue_declare(source, durable=True)
    fill(channel, source, 5)
    assert (
        run_cli(
            broker, tmp_path / "a", "bind", "--exchange", exchange, "--tenant", tenant, "--yes"
        ).returncode
        == 0
    )

    done = run_cli(
        broker, tmp_path / "a", "republish", "--exchange", exchange, "--queue", source,
        "--priority", "5", "--routing-key", tenant, "--yes", "--json",
    )  # fmt: skip

    assert json.loads(done.stdout)["moved"] == 5
    assert queue_counts_of(channel, source, f"tenant.{tenant}") == [0, 5]
    assert {p.priority for _, p in drain(channel, f"tenant.{tenant}")} == {5}


def queue_counts_of(channel, *queues: str) -> list[int]:
    return [channel.queue_declare(queue, passive=True).method.message_count for queue in queues]


def test_sigkill_mid_republish_leaves_every_message_in_the_queue_or_the_named_holding_queue(
    broker, settings_for, session_for, channel, unique, tmp_path
):
    queue = unique("jobs")
    channel.queue_declare(queue, durable=True, arguments={"x-max-priority": 10})
    fill(channel, queue, 20000, priority=1)
    audit = tmp_path / "audit.sqlite"
    command = [*DASHBOARD, "republish", "--queue", queue, "--priority", "8", "--yes"]
    killed = subprocess.Popen(
        command, env=cli_environment(broker, audit), stderr=subprocess.DEVNULL
    )
    wait_until(lambda: AuditLog(audit).records(), what="the audit record of the start")
    [started] = AuditLog(audit).records()
    holding = started.parameters["holding"]
    # Messages in the holding queue: the first leg is well on, or the second under way.
    session = session_for()
    wait_until(lambda: _ready(session, holding) >= 10000, what="10,000 held", timeout=60)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    in_queue, held = ready_once_returned(settings_for(), [queue, holding], 20000)
    assert held > 0
    assert in_queue + held - 20000 <= MAX_WINDOW  # duplicates bounded by the window

    recovered = run_cli(broker, audit, "requeue", "--from", holding, "--to", queue, "--yes")

    assert recovered.returncode == 0, recovered.stderr
    assert ready_count(settings_for(), holding) == 0
    ids = {properties.message_id for _, properties in drain(channel, queue)}
    assert ids == {f"m-{n}" for n in range(20000)}


def _ready(session, queue: str) -> int:
    """Ready messages, or 0 while the queue does not exist yet."""
    try:
        return session.ready_count(queue)
    except NotFound:
        return 0


def test_the_warning_for_a_quorum_target_matches_the_broker_version(
    broker, channel, unique, tmp_path, broker_version
):
    source, quorum = unique("src"), unique("quorum")
    channel.queue_declare(source, durable=True)
    channel.queue_declare(quorum, durable=True, arguments={"x-queue-type": "quorum"})
    fill(channel, source, 1)
    dry = ["republish", "--queue", source, "--priority", "7", "--to", quorum, "--dry-run", "--json"]
    priorities = {
        3: "none: it ignores priorities",
        4: "two levels: priorities 5 and above go before those below 5",
    }[broker_version.major]

    plan = json.loads(run_cli(broker, tmp_path / "a", *dry).stdout)

    assert plan["warnings"] == [
        f"Queue {quorum!r} is a quorum queue; on RabbitMQ {broker_version.text} its priorities "
        f"are {priorities}."
    ]
