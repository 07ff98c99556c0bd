"""Stuck-tenant rules on real broker data, each both triggered and not. The history's clock is
set explicitly (a poll "40 minutes ago"), so no test waits out a real window."""

import re
import time

from dashboard.reads.history import Sample, spaced
from dashboard.reads.poll import OverviewPolling
from dashboard.reads.stuck import Memory, flag_overview
from tests.support.helpers import (
    flags,
    history_for,
    overview_where,
    tenant_with_messages,
    wait_until,
)


def test_backlog_without_consumer(session_for, channel, unique, pod):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    settings = session.settings
    tenant_with_messages(channel, exchange, "orphan", unique("orphan"), 3)
    served = tenant_with_messages(channel, exchange, "served", unique("served"), 3)
    tenant_with_messages(channel, exchange, "empty", unique("empty"), 0)
    assert pod("pod-stuck").hold(served, prefetch=5, expect=3) == 3
    overview = overview_where(
        session, lambda rows: rows["orphan"].ready == 3 and rows["served"].unacked == 3
    )

    flag_overview(overview, None, settings)

    assert flags(overview) == {"orphan": ["no-consumer"], "served": [], "empty": []}
    assert overview.rows[0].flags[0].reason == "3 ready and no consumer."


def test_unacked_without_acks_over_the_window(session_for, channel, unique, pod, tmp_path):
    exchange = unique("tenants")
    session = session_for(
        tenant_exchange=exchange, stuck_after_seconds=2400, consumer_timeout_seconds=3600
    )
    settings = session.settings
    history = history_for(session, tmp_path)
    silent_queue = tenant_with_messages(channel, exchange, "silent", unique("silent"), 2)
    acking_queue = tenant_with_messages(channel, exchange, "acking", unique("acking"), 2)
    fresh_queue = tenant_with_messages(channel, exchange, "fresh", unique("fresh"), 2)
    worker = pod("pod-window")
    silent, acking = worker.hold(silent_queue, 2, 2), worker.hold(acking_queue, 2, 2)
    assert (silent, acking) == (2, 2)
    before = overview_where(
        session, lambda rows: rows["silent"].unacked == 2 and rows["acking"].unacked == 2
    )
    now = time.time()
    flag_overview(before, history, settings, now=now - 2500)
    assert worker.hold(fresh_queue, 2, 2) == 2
    worker.ack_one(acking_queue)

    after = overview_where(
        session, lambda rows: rows["acking"].unacked == 1 and rows["fresh"].unacked == 2
    )
    flag_overview(after, history, settings, now=now)

    assert flags(after) == {"silent": ["no-acks"], "acking": [], "fresh": []}
    [silent_flag] = next(row for row in after.rows if row.tenant == "silent").flags
    # The history begins 2,500 s ago: the silence may be longer.
    assert silent_flag.reason == "2 unacked and no ack for over 41 min 40 s."

    # An hour later, beyond the window the rules read: the whole history says how long.
    flag_overview(after, history, settings, now=now + 3600)
    [later_flag] = next(row for row in after.rows if row.tenant == "silent").flags
    assert later_flag.reason == "2 unacked and no ack for over 1 h 41 min."


def test_the_broker_samples_prove_a_silence_the_history_has_not_seen(
    session_for, channel, unique, pod
):
    """A one-shot read (the CLI) has no history: the broker's own samples show since when the
    queue has held its messages without an ack, back to when it began holding them."""
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=3)
    silent_queue = tenant_with_messages(channel, exchange, "silent", unique("silent"), 2)
    assert pod(unique("pod")).hold(silent_queue, 2, 2) == 2
    held_from = time.time()

    def flagged():
        overview = overview_where(session, lambda rows: rows["silent"].unacked == 2)
        flag_overview(overview, None, session.settings, session=session)
        return overview if flags(overview)["silent"] == ["no-acks"] else None

    overview = wait_until(flagged, what="the broker's samples to show 3 s without an ack")
    [flag] = overview.rows[0].flags
    # Exact (no "over"): the samples reach back to before the queue held anything.
    assert re.fullmatch(r"2 unacked and no ack for \d+ s\.", flag.reason)
    seconds = int(flag.reason.split(" for ")[1].split()[0])
    assert seconds <= time.time() - held_from + 10


def test_a_console_judges_a_silence_up_to_when_the_ack_count_was_read(
    session_for, channel, unique, pod, tmp_path
):
    """A console lists the ack counts with the statistics, every WARREN_TOPOLOGY_SECONDS, and
    lays fresh counts over them in between: a queue that acks all along must not read "no ack
    for" as long as its statistics' age (the demo's console did so on every tenant that
    acked), while a queue that holds its messages silent across two listings is flagged."""
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=2, topology_seconds=3)
    polling = OverviewPolling(session, history_for(session, tmp_path))
    acking = tenant_with_messages(channel, exchange, "acking", unique("acking"), 200)
    silent = tenant_with_messages(channel, exchange, "silent", unique("silent"), 2)
    worker = pod(unique("pod"))
    assert (worker.hold(acking, 3, 3), worker.hold(silent, 2, 2)) == (3, 2)
    listings = set()

    def silent_flagged():
        worker.ack_one(acking)
        overview = polling.read()
        listings.add(overview.statistics_at)
        assert flags(overview)["acking"] == []
        return flags(overview)["silent"] == ["no-acks"] and overview

    overview = wait_until(silent_flagged, what="two listings to show the silent queue's acks")
    assert len(listings) >= 2
    [flag] = next(row for row in overview.rows if row.tenant == "silent").flags
    assert re.fullmatch(r"2 unacked and no ack for [2-9] s\.", flag.reason)


def test_growing_dead_letter_queue(session_for, channel, unique, pod, tmp_path):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, dead_letter_window_seconds=900)
    settings = session.settings
    history = history_for(session, tmp_path)
    failing = tenant_with_messages(channel, exchange, "failing", unique("failing"), 4)
    steady = tenant_with_messages(channel, exchange, "steady", unique("steady"), 1)
    worker = pod("pod-dlq")
    assert worker.hold(steady, 1, 1) == 1
    worker.reject_all(steady)
    before = overview_where(session, lambda rows: rows["steady"].dead_letters == 1)
    assert next(r for r in before.rows if r.tenant == "steady").dead_letter_queue == f"{steady}.dlq"
    now = time.time()
    flag_overview(before, history, settings, now=now - 600)
    assert worker.hold(failing, 2, 2) == 2
    worker.reject_all(failing)

    after = overview_where(session, lambda rows: rows["failing"].dead_letters == 2)
    flag_overview(after, history, settings, now=now)

    assert flags(after) == {"failing": ["dead-letters-growing"], "steady": []}
    [grew] = next(row for row in after.rows if row.tenant == "failing").flags
    assert grew.reason == (
        f"Dead-letter queue {failing}.dlq grew by 2 in the last 10 min 0 s (now 2)."
    )


def test_a_poll_remembers_first_samples_only_while_its_window_holds_them(
    session_for, channel, unique, pod, tmp_path
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, dead_letter_window_seconds=900)
    settings = session.settings
    history = history_for(session, tmp_path)
    queue = tenant_with_messages(channel, exchange, "failing", unique("failing"), 2)
    memory, now = Memory(), time.time()
    asked = []
    first_counting = history.first_counting
    history.first_counting = lambda vhost, queues, *rest: (
        asked.append((rest[-1], queues)) or first_counting(vhost, queues, *rest)
    )
    for dead in (1, 2):
        worker = pod(unique("pod"))
        assert worker.hold(queue, 1, 1) == 1
        worker.reject_all(queue)
        worker.close()
        overview = overview_where(session, lambda rows, n=dead: rows["failing"].dead_letters == n)
        flag_overview(overview, history, settings, now=now - 1500 + 500 * dead, memory=memory)
    assert flags(overview) == {"failing": ["dead-letters-growing"]}
    # The second poll asked nothing: its window still held the first poll's sample.
    assert sum(count == "dead_letters" and queue in queues for count, queues in asked) == 1

    # The first sample of the window (1 dead letter, 1,000 s ago) has left it: the growth is
    # measured from the next one (2, 500 s ago), as a poll with no memory measures it.
    flag_overview(overview, history, settings, now=now, memory=memory)
    remembered = flags(overview)
    flag_overview(overview, history, settings, now=now)

    assert remembered == flags(overview) == {"failing": []}


def test_a_poll_remembers_a_silence_while_the_ack_count_stands(
    session_for, channel, unique, pod, tmp_path
):
    exchange = unique("tenants")
    session = session_for(
        tenant_exchange=exchange, stuck_after_seconds=2400, consumer_timeout_seconds=3600
    )
    settings = session.settings
    history = history_for(session, tmp_path)
    silent_queue = tenant_with_messages(channel, exchange, "silent", unique("silent"), 2)
    acking_queue = tenant_with_messages(channel, exchange, "acking", unique("acking"), 2)
    worker = pod(unique("pod"))
    assert (worker.hold(silent_queue, 2, 2), worker.hold(acking_queue, 2, 2)) == (2, 2)
    before = overview_where(
        session, lambda rows: rows["silent"].unacked == 2 and rows["acking"].unacked == 2
    )
    memory, now = Memory(), time.time()
    flag_overview(before, history, settings, now=now - 2500, memory=memory)
    worker.ack_one(acking_queue)
    after = overview_where(session, lambda rows: rows["acking"].unacked == 1)
    asked = []
    held_silences = history.held_silences
    history.held_silences = lambda vhost, acks, since: (
        asked.append(set(acks)) or held_silences(vhost, acks, since)
    )

    remembered = []
    for moment in (now, now + 3600):
        flag_overview(after, history, settings, now=moment, memory=memory)
        remembered.append(reasons(after))
    asked_with_memory = set().union(*asked)
    without_memory = []
    for moment in (now, now + 3600):
        flag_overview(after, history, settings, now=moment)
        without_memory.append(reasons(after))

    # The silent queue's ack count stood: asked once, by the first poll. The other acked since.
    assert asked_with_memory == {acking_queue}
    assert remembered == without_memory
    assert [flagged["silent"] for flagged in remembered] == [
        ["2 unacked and no ack for over 41 min 40 s."],
        ["2 unacked and no ack for over 1 h 41 min."],
    ]


def reasons(overview) -> dict[str, list[str]]:
    return {row.tenant: [flag.reason for flag in row.flags] for row in overview.rows}


def test_history_gaps_break_the_line():
    samples = [Sample(at, 1, 0, 0, None) for at in (0, 10, 20, 80, 90)]
    points = spaced([(sample, 30) for sample in samples])
    assert [(p.at, p.ready) for p in points] == [
        (0, 1),
        (10, 1),
        (20, 1),
        (35, None),
        (80, 1),
        (90, 1),
    ]


def test_dead_letter_queue_set_by_policy(broker, session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = unique("policy-acme")
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.queue_declare(f"{queue}.dead", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="acme")
    policy = unique("dlx")
    definition = f'{{"dead-letter-exchange": "", "dead-letter-routing-key": "{queue}.dead"}}'
    broker.ctl("set_policy", policy, f"^{queue}$", definition, "--apply-to", "queues")
    try:
        channel.basic_publish(exchange, "acme", b"job", mandatory=True)
        worker = pod("pod-policy")
        assert worker.hold(queue, prefetch=1, expect=1) == 1
        worker.reject_all(queue)

        overview = overview_where(
            session_for(tenant_exchange=exchange), lambda rows: rows["acme"].dead_letters == 1
        )
    finally:
        broker.ctl("clear_policy", policy)
    assert overview.rows[0].dead_letter_queue == f"{queue}.dead"


def test_work_that_keeps_coming_back_is_a_redelivery_loop(
    session_for, channel, unique, pod, tmp_path
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, redelivery_window_seconds=900)
    settings = session.settings
    history = history_for(session, tmp_path)
    looping = tenant_with_messages(channel, exchange, "looping", unique("looping"), 2)
    tenant_with_messages(channel, exchange, "calm", unique("calm"), 2)
    before = overview_where(
        session, lambda rows: rows["looping"].ready == 2 and rows["calm"].ready == 2
    )
    now = time.time()
    flag_overview(before, history, settings, now=now - 300)
    # Pods that die on the jobs: each takes both, and its connection goes.
    for attempt in range(3):
        dying = pod(unique(f"pod-dies-{attempt}"))
        dying.hold(looping, 2, 2)
        dying.close()

    after = overview_where(session, lambda rows: rows["looping"].redeliveries >= 2)
    flag_overview(after, history, settings, now=now)

    assert flags(after)["calm"] == ["no-consumer"]
    assert flags(after)["looping"] == ["no-consumer", "redelivery-loop"]
    [loop] = [f for f in next(r for r in after.rows if r.tenant == "looping").flags
              if f.kind == "redelivery-loop"]  # fmt: skip
    redelivered = next(r for r in after.rows if r.tenant == "looping").redeliveries
    assert loop.reason.startswith(
        f"{redelivered} redeliveries and 0 acks in the last 5 min 0 s: work that keeps coming back."
    )
