"""The queue an action writes into, by its own rules: a pod's held messages returned into a
queue at its length limit. Measured on 3.10 and 4.0: returns go back to the head, so drop-head
pushes them out first, and reject-publish lets the queue go over its limit."""

import json

import pika
import pytest

from dashboard.actions.audit import AuditLog
from dashboard.actions.requeue_connection import plan_requeue_connection, requeue_connection
from dashboard.actions.target_rules import QueueRules, arrival
from dashboard.errors import NotFound, WarrenError
from tests.support.helpers import (
    drain,
    fill,
    queue_counts,
    ready_and_consumers,
    run_cli,
    wait_until,
)


def full_queue_with_a_pod(channel, unique, pod, overflow: str) -> tuple[str, str]:
    """A queue of at most 5 whose pod holds 3, with 5 more ready behind them: full."""
    queue = unique(f"full-{overflow}")
    channel.queue_declare(
        queue, durable=True, arguments={"x-max-length": 5, "x-overflow": overflow}
    )
    fill(channel, queue, 3)
    name = unique("pod")
    assert pod(name).hold(queue, prefetch=3, expect=3) == 3
    fill(channel, queue, 5, headers={"late": True})
    return queue, name


def held_three(session, name: str):
    """The plan once the broker lists the pod with its 3 held (its statistics lag)."""

    def plan():
        try:
            found = plan_requeue_connection(session, name)
        except NotFound:
            return None
        return found if found.unacked == 3 else None

    return wait_until(plan, what="the pod's 3 held")


def test_returning_into_a_full_drop_head_queue_is_refused_unless_forced(
    session_for, channel, unique, pod, tmp_path
):
    session = session_for(audit_db=tmp_path / "audit.sqlite")
    queue, name = full_queue_with_a_pod(channel, unique, pod, "drop-head")
    plan = held_three(session, name)
    assert plan.loses == 3
    assert (
        f"'{queue}' holds 5 of at most 5 with drop-head: the 3 messages returned would push "
        "the 3 oldest out (those returned first), lost (no dead-letter exchange)."
    ) in plan.sentence

    with pytest.raises(WarrenError, match="3 messages would be lost by the queues' own rules"):
        requeue_connection(session, plan, "tester")
    assert queue_counts(session.settings, queue) == (5, 1)  # nothing changed: the pod holds on

    ready_after = requeue_connection(session, plan, "tester", force=True)

    assert ready_after == {queue: 5}
    # The 3 returned were the oldest: pushed out. The 5 that came later are there.
    assert [props.headers.get("late") for _, props in drain(channel, queue)] == [True] * 5
    refused, forced = AuditLog(session.settings.audit_db).records(2)[::-1]
    assert (refused.outcome, forced.outcome) == ("failed", "ok")
    assert forced.counts == {"unacked_returned": 3, f"ready:{queue}": 5}


def test_returning_into_a_full_reject_publish_queue_goes_over_its_limit(
    session_for, channel, unique, pod
):
    session = session_for()
    queue, name = full_queue_with_a_pod(channel, unique, pod, "reject-publish")
    plan = held_three(session, name)
    assert (plan.loses, plan.arrivals[0].sentence) == (0, None)

    assert requeue_connection(session, plan, "tester") == {queue: 8}


@pytest.mark.parametrize(
    ("overflow", "dead_letters", "excess", "lost"),
    [
        ("drop-head", None, 2, 2),
        ("drop-head", "dlx", 2, 0),
        ("reject-publish", None, 2, 0),
        ("reject-publish-dlx", None, 2, 2),
        ("reject-publish-dlx", "dlx", 2, 0),
    ],
)
def test_what_a_limit_does_with_a_publish(overflow, dead_letters, excess, lost):
    rules = QueueRules(
        queue="q", ready=3, max_length=5, overflow=overflow, dead_letter_exchange=dead_letters
    )
    into = arrival(rules, 4)
    assert (into.excess, into.lost) == (excess, lost)
    assert into.sentence.startswith(f"'q' holds 3 of at most 5 with {overflow}:")
    assert arrival(rules, 2).sentence is None


def test_a_requeue_into_a_full_queue_says_what_it_would_push_out_and_needs_force(
    broker, channel, unique, tmp_path
):
    dlq, target = unique("dead"), unique("full")
    channel.queue_declare(dlq, durable=True)
    channel.queue_declare(target, durable=True, arguments={"x-max-length": 5})
    fill(channel, dlq, 3)
    fill(channel, target, 4, headers={"late": True})
    audit = tmp_path / "audit.sqlite"

    def requeue(*extra: str):
        return run_cli(broker, audit, "requeue", "--from", dlq, "--to", target, *extra)

    refused = requeue("--yes")
    assert refused.returncode == 1
    assert refused.stderr == (
        "warren: 2 messages would be lost by the queues' own rules: refused (--force accepts "
        "the loss). Nothing was changed.\n"
    )
    dry = json.loads(requeue("--dry-run", "--json").stdout)
    assert dry["arrivals"] == [
        {
            "queue": target, "incoming": 3, "excess": 2, "lost": 2,
            "sentence": f"'{target}' holds 4 of at most 5 with drop-head: the 3 messages coming "
            "in would push the 2 oldest out, lost (no dead-letter exchange).",
        }
    ]  # fmt: skip
    assert (queue_counts_of(channel, dlq), queue_counts_of(channel, target)) == (3, 4)

    done = requeue("--yes", "--force")

    assert done.returncode == 0, done.stderr
    # Moved 3 (confirmed), and the target holds what its limit kept, as the result says.
    assert done.stdout.startswith("Moved 3; 0 sent back to")
    assert f"'{target}' holds 5 ready now." in done.stdout
    assert queue_counts_of(channel, target) == 5
    forced = AuditLog(audit).records(1)[0]
    assert forced.parameters["force"] is True and forced.counts[f"ready:{target}"] == 5


def queue_counts_of(channel, queue: str) -> int:
    return ready_and_consumers(channel, queue)[0]


def test_a_requeue_into_their_own_queues_counts_the_split_first(broker, channel, unique, tmp_path):
    # Two tenants' dead letters in one queue, each back to the queue it died in; one of those
    # is at its length limit, with drop-head and no dead-letter exchange.
    dlq, roomy, full = unique("shared-dlq"), unique("roomy"), unique("full")
    channel.queue_declare(dlq, durable=True)
    channel.queue_declare(roomy, durable=True)
    channel.queue_declare(full, durable=True, arguments={"x-max-length": 3})
    fill(channel, full, 3)
    for number, home in enumerate([roomy, full, roomy, full, roomy]):
        channel.basic_publish("", dlq, f"d-{number}".encode(), pika.BasicProperties(headers={
            "x-death": [{"queue": home, "reason": "rejected", "count": 1, "exchange": "",
                         "routing-keys": [home]}]}))  # fmt: skip
    audit = tmp_path / "audit.sqlite"

    dry = run_cli(broker, audit, "requeue", "--from", dlq, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        f"'{full}' holds 3 of at most 3 with drop-head: the 2 messages coming in would push the "
        "2 oldest out, lost (no dead-letter exchange)."
    ) in dry.stdout
    assert "2 messages would be lost: refused unless forced." in dry.stdout
    refused = run_cli(broker, audit, "requeue", "--from", dlq, "--yes")
    assert refused.returncode == 1
    assert "2 messages would be lost by the queues' own rules" in refused.stderr
    # The pass that counted the split left every dead letter where it was.
    assert queue_counts_of(channel, dlq) == 5

    forced = run_cli(broker, audit, "requeue", "--from", dlq, "--yes", "--force", "--json")

    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["held_after"] == {roomy: 3, full: 3}


def test_a_limit_in_bytes_is_planned_at_the_incoming_average_size(
    broker, channel, unique, tmp_path
):
    source, target = unique("src"), unique("bytes")
    channel.queue_declare(source, durable=True)
    channel.queue_declare(target, durable=True, arguments={"x-max-length-bytes": 1000})
    for _ in range(10):
        channel.basic_publish("", source, b"x" * 200)
    channel.basic_publish("", target, b"y" * 500)
    audit = tmp_path / "audit.sqlite"

    def dry_run() -> str:
        done = run_cli(broker, audit, "requeue", "--from", source, "--to", target, "--dry-run")
        assert done.returncode == 0, done.stderr
        return done.stdout

    # The broker's byte counts come with its statistics, a few seconds late.
    said = wait_until(lambda: "holds about 500 bytes" in (out := dry_run()) and out,
                      what="the byte counts in the statistics")  # fmt: skip
    assert (
        f"'{target}' holds about 500 bytes of at most 1,000 (at the incoming messages' average "
        "size) with drop-head: the 10 messages coming in would push the 8 oldest out, lost"
    ) in said


def test_a_holding_queue_s_way_back_is_planned_by_the_source_s_rules(
    broker, channel, unique, tmp_path
):
    queue = unique("ttl")
    channel.queue_declare(
        queue, durable=True, arguments={"x-message-ttl": 60_000, "x-max-length": 3}
    )
    fill(channel, queue, 3)

    done = run_cli(broker, tmp_path / "audit.sqlite", "republish", "--queue", queue,
                   "--priority", "5", "--dry-run")  # fmt: skip

    assert done.returncode == 0, done.stderr
    # Back into the room they left: no length excess, and the TTL said.
    assert f"On the way back from holding queue 'warren.republish.{queue}." in done.stdout
    assert f"'{queue}' expires messages not taken within 60,000 ms" in done.stdout
    assert "would be lost" not in done.stdout
