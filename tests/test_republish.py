"""`warren republish` on a real broker: in place it ends, with exact counts, every message
carrying the new priority and its original properties and headers; warnings about targets."""

import json

from dashboard.amqp import queue_counts
from dashboard.audit import AuditLog
from tests.test_mover import drain, fill
from tests.test_requeue import run_cli


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
        {"moved": 300, "failed": 0},
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
