"""How long work waits (the oldest ready message, the backlog's age), how soon it drains, and
`backlog-growing`, on real broker data. The history's clock is set explicitly, as in
test_stuck.py, so no test waits out a real window."""

import time
from dataclasses import replace

import pika
from pydantic import TypeAdapter

from dashboard.reads.models import TenantRow, Wait
from dashboard.reads.stuck import Memory, flag_overview
from dashboard.reads.waiting import longest_waiting_first, wait_of
from tests.support.helpers import (
    flags,
    history_for,
    overview_where,
    publish,
    tenant_with_messages,
)


def rows_of(overview) -> dict[str, TenantRow]:
    return {row.tenant: row for row in overview.rows}


def test_the_wait_is_the_oldest_message_s_age_or_the_backlog_s(
    session_for, channel, unique, tmp_path
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    history = history_for(session, tmp_path)
    tenant_with_messages(channel, exchange, "stamped", unique("stamped"), 0)
    sent = int(time.time()) - 120
    for number in range(2):
        channel.basic_publish(
            exchange, "stamped", b"job", pika.BasicProperties(timestamp=sent + number)
        )
    tenant_with_messages(channel, exchange, "long", unique("long"), 3)
    later = tenant_with_messages(channel, exchange, "later", unique("later"), 1)
    channel.basic_get(later, auto_ack=True)  # used and empty: the history records its 0
    tenant_with_messages(channel, exchange, "empty", unique("empty"), 0)
    now = time.time()
    first = overview_where(
        session,
        lambda rows: (
            rows["long"].ready == 3
            and rows["stamped"].ready == 2
            and rows["later"].counted
            and rows["later"].ready == 0
        ),
    )
    flag_overview(first, history, session.settings, now=now - 600)
    publish(channel, exchange, "later", 2)
    second = overview_where(session, lambda rows: rows["later"].ready == 2)
    flag_overview(second, history, session.settings, now=now - 300)

    third = overview_where(session, lambda rows: rows["later"].ready == 2)
    flag_overview(third, history, session.settings, now=now)

    rows = rows_of(third)
    stamped_wait = rows["stamped"].wait
    assert (stamped_wait.measured_by, stamped_wait.at_least) == ("oldest-message", False)
    assert round(stamped_wait.seconds) == round(now - sent)
    assert stamped_wait.text.startswith("oldest ready message waiting 2 min")
    # No timestamps: since when the history has seen the queue with ready messages.
    long_wait = rows["long"].wait
    assert {key: getattr(long_wait, key) for key in ("seconds", "at_least", "text", "drain")} == {
        "seconds": 600,
        "at_least": True,  # the history's first sample already had them
        "text": "ready messages waiting at least 10 min 0 s",
        "drain": "never: no consumer",
    }
    assert (rows["later"].wait.seconds, rows["later"].wait.at_least) == (300, False)
    assert rows["later"].wait.text == "ready messages waiting 5 min 0 s"
    assert rows["empty"].wait is None
    assert [row.tenant for row in longest_waiting_first(third.rows)] == [
        "long",
        "later",
        "stamped",
        "empty",
    ]


def test_a_poll_remembers_a_backlog_and_forgets_it_once_drained(
    session_for, channel, unique, tmp_path
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange)
    history = history_for(session, tmp_path)
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    memory, now = Memory(), time.time()
    backed_up = overview_where(session, lambda rows: rows["acme"].ready == 1)
    flag_overview(backed_up, history, session.settings, now=now - 60, memory=memory)
    assert memory.backlogs == {queue: (now - 60, True)}

    channel.queue_purge(queue)
    drained = overview_where(session, lambda rows: rows["acme"].ready == 0)
    flag_overview(drained, history, session.settings, now=now, memory=memory)

    assert (memory.backlogs, rows_of(drained)["acme"].wait) == ({}, None)


def test_drain_time_at_the_ack_rate():
    row = TenantRow(
        tenant="acme", vhost="/", queue="acme", ready=1200, unacked=1, total=1201,
        consumers=2, ack_rate=0.8, queue_type="classic", head_timestamp=1000.0,
    )  # fmt: skip
    # As the CLI's JSON and the console read it: `seconds` and `text` worked out, not `as_of`.
    assert {
        key: value
        for key, value in TypeAdapter(Wait).dump_python(wait_of(row, None, 1090)).items()
        if key != "text"
    } == {
        "seconds": 90,
        "measured_by": "oldest-message",
        "at_least": False,
        "drain_seconds": 1500,
        "drain": "about 25 min 0 s at 0.8/s",
        "since": 1000,
    }
    stalled = replace(row, ack_rate=0.0)
    never_acked = replace(row, ack_rate=None, acks=0)
    unknown = replace(row, ack_rate=None, acks=7)
    assert [wait_of(r, None, 1090).drain for r in (stalled, never_acked, unknown)] == [
        "never: nothing is acked",
        "never: nothing acked yet",
        "unknown: the broker reports no ack rate",
    ]


def test_a_backlog_rising_under_its_consumers_is_growing(
    session_for, channel, unique, pod, tmp_path
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, backlog_window_seconds=600)
    settings = session.settings
    history = history_for(session, tmp_path)
    growing = tenant_with_messages(channel, exchange, "growing", unique("growing"), 2)
    burst = tenant_with_messages(channel, exchange, "burst", unique("burst"), 2)
    tenant_with_messages(channel, exchange, "orphan", unique("orphan"), 1)
    worker = pod(unique("pod-slow"))
    assert (worker.hold(growing, 1, 1), worker.hold(burst, 1, 1)) == (1, 1)
    now = time.time()

    def poll(at: float, ready: dict[str, int]):
        overview = overview_where(
            session, lambda rows: all(rows[t].ready == n for t, n in ready.items())
        )
        flag_overview(overview, history, settings, now=at)
        return overview

    poll(now - 600, {"growing": 1, "burst": 1, "orphan": 1})
    for tenant in ("growing", "burst", "orphan"):
        publish(channel, exchange, tenant, 3)
    poll(now - 300, {"growing": 4, "burst": 4, "orphan": 4})
    publish(channel, exchange, "growing", 2)
    publish(channel, exchange, "orphan", 2)
    channel.queue_purge(burst)
    latest = poll(now, {"growing": 6, "burst": 0, "orphan": 6})

    assert flags(latest) == {
        "growing": ["backlog-growing"],
        "burst": [],  # rose, then drained
        "orphan": ["no-consumer"],  # growing too, but nobody consumes: that is the finding
    }
    [flag] = rows_of(latest)["growing"].flags
    assert flag.reason == (
        "Ready grew from 1 to 6 in the last 10 min 0 s, about 0.5 a minute, with 1 consumer: "
        "too few pods for this tenant's work (or pods that stopped taking it)."
    )


def test_a_history_shorter_than_half_the_window_says_nothing_of_growth(
    session_for, channel, unique, pod, tmp_path
):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, backlog_window_seconds=600)
    history = history_for(session, tmp_path)
    queue = tenant_with_messages(channel, exchange, "young", unique("young"), 2)
    assert pod(unique("pod-young")).hold(queue, 1, 1) == 1
    now = time.time()
    first = overview_where(session, lambda rows: rows["young"].ready == 1)
    flag_overview(first, history, session.settings, now=now - 200)
    publish(channel, exchange, "young", 2)
    second = overview_where(session, lambda rows: rows["young"].ready == 3)
    flag_overview(second, history, session.settings, now=now - 100)
    publish(channel, exchange, "young", 2)

    latest = overview_where(session, lambda rows: rows["young"].ready == 5)
    flag_overview(latest, history, session.settings, now=now)

    assert flags(latest) == {"young": []}
