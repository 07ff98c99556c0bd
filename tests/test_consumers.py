"""Per-consumer load against a real broker: exact prefetch and unacked, and every flag both
raised and not raised."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika

from dashboard.broker.models import ConsumerInfo
from dashboard.reads.consumers import (
    SETTLING_SECONDS,
    STATISTICS_SECONDS,
    AckWatch,
    fetch_consumers,
    own_only_sentence,
)
from dashboard.reads.poll import consumers_poll
from dashboard.reads.silence import Silence
from tests.support.helpers import (
    publish,
    ready_and_consumers,
    run_cli,
    tenant_with_messages,
    wait_until,
)


def consumers_when(session, queue: str, expected: list, now=None):
    """The consumers of `queue` once their (connection, prefetch, unacked) equal `expected`,
    in any order (flagged with the session's stuck_after_seconds)."""

    def matches():
        loads = [load for load in fetch_consumers(session, now=now).loads if load.queue == queue]
        seen = [(load.connection, load.prefetch, load.unacked) for load in loads]
        return loads if sorted(seen) == sorted(expected) else None

    return wait_until(matches, what=f"consumers {expected}")


def test_three_consumers_over_two_connections_match_amqp(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 20)
    pod_a, pod_b = pod("pod-a"), pod("pod-b")
    assert pod_a.hold(queue, prefetch=2, expect=2) == 2
    assert pod_a.hold(queue, prefetch=5, expect=5) == 5
    assert pod_b.hold(queue, prefetch=3, expect=3) == 3
    assert ready_and_consumers(channel, queue) == (10, 3)

    loads = consumers_when(
        session_for(tenant_exchange=exchange, stuck_after_seconds=1700),
        queue,
        [("pod-a", 2, 2), ("pod-a", 5, 5), ("pod-b", 3, 3)],
    )

    assert [load.connection for load in loads] == ["pod-a", "pod-a", "pod-b"]
    assert {load.tenants == ["acme"] for load in loads} == {True}
    assert {load.load for load in loads} == {1.0}
    assert len({load.channel for load in loads}) == 3
    assert {load.channel_consumers for load in loads} == {1}


def test_connection_without_a_client_name_shows_its_peer(broker, session_for, channel, unique):
    queue = tenant_with_messages(channel, unique("tenants"), "acme", unique("acme"), 1)
    anonymous = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        consumer = anonymous.channel()
        consumer.basic_qos(prefetch_count=1)
        consumer.basic_consume(queue, lambda *_: None)
        anonymous.process_data_events(time_limit=0.5)
        local_port = anonymous._impl._transport._sock.getsockname()[1]

        session = session_for(stuck_after_seconds=1700)
        consumers_when(session, queue, [(f"127.0.0.1:{local_port}", 1, 1)])
    finally:
        anonymous.close()


def flags_by_tag(loads) -> dict[str, list[str]]:
    return {load.consumer_tag: [flag.kind for flag in load.flags] for load in loads}


def test_flags_raised_and_not_raised(session_for, channel, unique, pod):
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=1700)
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    publish(channel, exchange, "acme", 4)
    empty = tenant_with_messages(channel, exchange, "calm", unique("calm"), 0)
    connected = datetime.now(UTC)
    worker = pod("pod-flags")
    saturated = worker.consume(queue, prefetch=2, expect=2, tag="saturated")
    unlimited = worker.consume(queue, prefetch=0, expect=2, tag="unlimited")
    idle = worker.consume(empty, prefetch=5, expect=0, tag="idle")
    autoack = worker.consume(empty, prefetch=5, expect=0, tag="autoack", auto_ack=True)
    consumers_when(session, queue, [("pod-flags", 2, 2), ("pod-flags", 0, 2)])
    # Seconds after it connected, a pod may not have set its prefetch yet: not flagged.
    settling = fetch_consumers(session, now=connected + timedelta(seconds=2)).loads
    assert flags_by_tag([load for load in settling if load.queue == queue]) == {
        saturated: [],
        unlimited: [],
    }

    later = wait_until(lambda: _all_idle(session, session_for, queue, empty), what="idle channels")
    fresh = flags_by_tag(later(stuck_after=3600, seconds_later=SETTLING_SECONDS))
    assert fresh == {
        saturated: [],
        unlimited: ["unlimited-prefetch"],
        idle: [],
        autoack: ["auto-ack"],
    }

    hour_later = flags_by_tag(later(stuck_after=3600, seconds_later=3601))
    assert hour_later == {
        saturated: ["stuck"],
        unlimited: ["unlimited-prefetch"],
        idle: ["idle"],
        # It never acks, so its silence says nothing about being idle.
        autoack: ["auto-ack"],
    }


def _all_idle(session, session_for, *queues: str):
    """Once every consumer's channel reports `idle_since`, a function of (stuck_after, seconds
    later than now) that fetches the consumers of `queues` as if that much time had passed."""
    loads = [load for load in fetch_consumers(session).loads if load.queue in queues]
    if len(loads) != 4 or any(load.idle_since is None for load in loads):
        return None

    def at(stuck_after: float, seconds_later: float):
        now = datetime.now(UTC) + timedelta(seconds=seconds_later)
        later = session_for(
            tenant_exchange=session.exchange,
            stuck_after_seconds=stuck_after,
            consumer_timeout_seconds=2 * stuck_after,  # far from it, an hour later too
        )
        return [load for load in fetch_consumers(later, now=now).loads if load.queue in queues]

    return at


def test_consumers_cli_json(broker, settings_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    assert pod("pod-cli").hold(queue, prefetch=2, expect=2) == 2
    environment = {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_TENANT_EXCHANGE": exchange,
        "PATH": "/usr/bin:/bin",
    }

    def listed():
        done = subprocess.run(
            [sys.executable, "-m", "dashboard", "consumers", "--json"],
            env=environment,
            cwd=broker.base_dir,
            capture_output=True,
            text=True,
            check=True,
        )
        mine = [record for record in json.loads(done.stdout) if record["queue"] == queue]
        return mine if mine and mine[0]["unacked"] == 2 else None

    [record] = wait_until(listed, what="the CLI to show 2 unacked")
    assert {key: record[key] for key in ("connection", "queue", "prefetch", "unacked")} == {
        "connection": "pod-cli",
        "queue": queue,
        "prefetch": 2,
        "unacked": 2,
    }
    assert record["channel"].endswith("(1)")
    assert record["consumer_tag"]
    assert record["ack_rate"] == 0.0
    assert record["tenants"] == ["acme"]


def test_ack_watch_remembers_since_when_acks_stood_still():
    watch = AckWatch()
    assert watch.silence("ch-1", 5, 1000.0) == Silence(1000.0, at_least=True)
    assert watch.silence("ch-1", 5, 1600.0) == Silence(1000.0, at_least=True)
    assert watch.silence("ch-1", 6, 1600.0) == Silence(1600.0)
    assert watch.silence("ch-1", 6, 1700.0) == Silence(1600.0)
    watch.keep_only({"ch-2"})
    assert watch.silence("ch-1", 6, 1800.0) == Silence(1800.0, at_least=True)


def test_ack_watch_keeps_what_the_broker_s_hour_showed_while_the_count_stands():
    watch = AckWatch()
    watch.silence("ch-1", 5, 4000.0)
    watch.learn("ch-1", 5, Silence(1500.0))
    watch.learn("ch-1", 5, Silence(3000.0))  # later evidence does not shorten it
    assert watch.silence("ch-1", 5, 4100.0) == Silence(1500.0)
    watch.learn("ch-1", 4, Silence(100.0))  # of another count: not this silence
    assert watch.silence("ch-1", 6, 4200.0) == Silence(4200.0)


def test_consumers_sharing_a_channel_share_its_limit(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    worker = pod("pod-shared")
    shared = worker.connection.channel()
    worker.consume(queue, prefetch=2, expect=2, tag="first", channel=shared)
    worker.consume(queue, prefetch=2, expect=1, tag="second", channel=shared)

    loads = consumers_when(
        session_for(tenant_exchange=exchange, stuck_after_seconds=1),
        queue,
        [("pod-shared", 2, 3), ("pod-shared", 2, 3)],
        now=datetime.now(UTC) + timedelta(days=1),
    )

    assert [(load.channel_consumers, load.channel_prefetch, load.load) for load in loads] == [
        (2, 4, 0.75),
        (2, 4, 0.75),
    ]
    # 3 of the channel's 4: not saturated, so not stuck; held a day, it is past the timeout.
    assert [flag.kind for load in loads for flag in load.flags] == ["near-consumer-timeout"] * 2


def test_a_user_without_the_monitoring_tag_is_told_what_it_cannot_see(
    broker, session_for, channel, unique, pod
):
    name = unique("manager")
    broker.ctl("add_user", name, "pw-of-test")
    broker.ctl("set_user_tags", name, "management")
    broker.ctl("set_permissions", "-p", "/", name, "", "", ".*")
    try:
        queue = tenant_with_messages(channel, unique("tenants"), "acme", unique("acme"), 1)
        assert pod("pod-other-user").hold(queue, prefetch=1, expect=1) == 1
        manager = session_for(username=name, password="pw-of-test", stuck_after_seconds=1700)
        report = fetch_consumers(manager)
        full = fetch_consumers(session_for(stuck_after_seconds=1700))
    finally:
        broker.ctl("delete_user", name)
    assert (report.own_only, full.own_only) == (True, False)
    assert queue not in {load.queue for load in report.loads}
    assert own_only_sentence(name) == (
        f"User {name!r} has no monitoring tag, so the broker shows it only the consumers of its "
        "own connections."
    )


def test_a_closing_channel_is_not_an_error():
    closing = {"consumer_tag": "t", "queue": {"name": "q", "vhost": "/"}, "channel_details": {}}
    assert ConsumerInfo.model_validate(closing).channel_details is None
    assert ConsumerInfo.model_validate(closing | {"channel_details": []}).channel_details is None


def test_consumers_by_pod_sums_each_pod_once_per_channel(broker, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 10)
    holder = pod(unique("pod-sum"))
    assert holder.hold(queue, prefetch=2, expect=2) == 2
    assert holder.hold(queue, prefetch=3, expect=3) == 3

    def listed():
        done = run_cli(
            broker, None, "consumers", "--by-pod", "--json", WARREN_TENANT_EXCHANGE=exchange
        )
        mine = [record for record in json.loads(done.stdout) if record["connection"] == holder.name]
        return mine if mine and mine[0]["unacked"] == 5 else None

    [record] = wait_until(listed, what="the pod to show 5 unacked")
    assert {key: record[key] for key in ("consumers", "unacked", "prefetch", "queues")} == {
        "consumers": 2,
        "unacked": 5,
        "prefetch": 5,
        "queues": [queue],
    }
    table = run_cli(broker, None, "consumers", "--by-pod", WARREN_TENANT_EXCHANGE=exchange)
    assert table.returncode == 0, table.stderr
    [row] = [line.split() for line in table.stdout.splitlines() if line.startswith(holder.name)]
    assert row == [holder.name, "2", "5", "5", queue]


def test_the_one_shot_cli_and_the_console_give_a_stuck_pod_the_same_verdict(
    broker, session_for, channel, unique, pod
):
    """The CLI has no memory of earlier polls: the broker's own samples and the connection's
    start prove the silence, as they do for the console's first poll."""
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    name = unique("pod-hung")
    assert pod(name).hold(queue, prefetch=2, expect=2) == 2
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=2)

    def stuck_in_console():
        mine = [load for load in consumers_poll(session).get().data.loads if load.queue == queue]
        return mine if mine and [f.kind for f in mine[0].flags] == ["stuck"] else None

    [load] = wait_until(stuck_in_console, what="the console to flag the pod stuck")
    done = run_cli(
        broker, None, "consumers", "--json",
        WARREN_TENANT_EXCHANGE=exchange, WARREN_STUCK_AFTER_SECONDS="2",
    )  # fmt: skip
    [record] = [record for record in json.loads(done.stdout) if record["queue"] == queue]
    assert (record["connection"], [flag["kind"] for flag in record["flags"]]) == (name, ["stuck"])
    assert record["acks_unchanged_at_least"] is load.acks_unchanged_at_least is False
    # Both count from the connection's start, to the second.
    since = datetime.fromisoformat(record["acks_unchanged_since"])
    assert abs((since - load.acks_unchanged_since).total_seconds()) < 1
    assert record["no_ack_for"].endswith(" s")


def test_an_ack_ends_the_silence(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    worker = pod(unique("pod"))
    worker.hold(queue, prefetch=2, expect=2)
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=1700)
    [before] = consumers_when(session, queue, [(worker.name, 2, 2)])
    worker.ack_one(queue)

    def acked():
        mine = [load for load in fetch_consumers(session).loads if load.queue == queue]
        return mine if mine and mine[0].acks == 1 else None

    [after] = wait_until(acked, what="the broker to count the ack")
    assert after.acks_unchanged_since is None or (
        after.acks_unchanged_since > before.acks_unchanged_since
    )


def test_a_pod_near_its_queue_s_consumer_timeout_is_flagged(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    name = unique("pod-long-job")
    pod(name).hold(queue, 2, 1)  # one long job, under its prefetch: not stuck
    session = session_for(
        tenant_exchange=exchange, stuck_after_seconds=3, consumer_timeout_seconds=5
    )

    def near():
        loads = [load for load in fetch_consumers(session).loads if load.queue == queue]
        flagged = [
            load for load in loads if "near-consumer-timeout" in [f.kind for f in load.flags]
        ]
        return flagged[0] if flagged else None

    load = wait_until(near, timeout=30)
    assert load.timeout_seconds == 5
    [flag] = load.flags
    assert flag.reason.endswith(
        "of the broker's 5 s consumer timeout: past it the broker closes the channel (a 406) "
        "and its messages go back to ready, for the next pod to take and time out on again."
    )


def test_a_queue_s_own_consumer_timeout_counts_from_3_12(
    session_for, channel, unique, pod, broker_version
):
    exchange, queue = unique("tenants"), unique("own-timeout")
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.queue_declare(queue, durable=True, arguments={"x-consumer-timeout": 4000})
    channel.queue_bind(queue, exchange, "acme")
    channel.basic_publish("", queue, b"job")
    load_name = unique("pod")
    pod(load_name).hold(queue, 1, 1)
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=3)

    [load] = consumers_when(session, queue, [(load_name, 1, 1)])

    assert load.timeout_seconds == (4 if broker_version.per_queue_consumer_timeout else 1800)


def test_a_job_waiting_behind_another_while_a_pod_sits_free_is_flagged(
    session_for, channel, unique, pod
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    busy, free = unique("pod-busy"), unique("pod-free")
    pod(busy).hold(queue, 2, 2)
    pod(free).hold(queue, 2, 0)
    session = session_for(tenant_exchange=exchange, refresh_seconds=1)

    def flagged():
        loads = {load.connection: load for load in fetch_consumers(session).loads}
        kinds = [flag.kind for flag in loads[busy].flags] if busy in loads else []
        return loads if "waiting-behind-job" in kinds else None

    loads = wait_until(flagged, timeout=30)
    [flag] = [flag for flag in loads[busy].flags if flag.kind == "waiting-behind-job"]
    assert flag.reason == (
        f"Holds 2 unacked (prefetch 2): 1 wait behind the job it is on, while {free} on the "
        "same queue holds none. With prefetch 1, long jobs go to free pods."
    )
    assert loads[free].flags == []


def test_a_celery_worker_is_named_by_its_node_and_its_own_queues_are_not_work(
    broker, channel, unique, session_for
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    name = f"{unique('pod-celery')}@host"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.support.celery_app", "-b", broker.amqp_url,
         "worker", "-n", name, "--pool", "solo", "-l", "warning"],
        env=os.environ | {"WARREN_TEST_QUEUE": queue},
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        session = session_for(tenant_exchange=exchange)

        def three():
            mine = [load for load in fetch_consumers(session).loads if load.connection == name]
            return mine if len(mine) == 3 else None

        mine = wait_until(three, timeout=60, what="the worker's three consumers")
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    by_queue = {load.queue: load for load in mine}
    pidbox = f"{name}.celery.pidbox"
    [events] = [queue for queue in by_queue if queue.startswith("celeryev.")]
    assert {queue: load.work for queue, load in by_queue.items()} == {
        queue: True, pidbox: False, events: False,
    }  # fmt: skip
    # Celery's own queues are auto-ack: listed, not flagged as work that could be lost.
    assert [(load.ack_required, load.flags) for load in (by_queue[pidbox], by_queue[events])] == [
        (False, []),
        (False, []),
    ]
    assert (by_queue[queue].ack_required, by_queue[queue].tenants) == (True, ["acme"])


def test_a_pod_that_just_took_a_job_after_idling_is_not_stuck_yet(
    session_for, channel, unique, pod
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("idle-then-busy"), 0)
    name = unique("pod-idle")
    worker = pod(name)
    worker.consume(queue, prefetch=1, expect=0)
    # Above the few seconds a hold may start before the poll that saw it (the statistics' age).
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=STATISTICS_SECONDS + 3)
    watch = AckWatch()

    def mine():
        loads = [load for load in fetch_consumers(session, watch).loads if load.queue == queue]
        return loads[0] if loads else None

    wait_until(lambda: (load := mine()) and load.unacked == 0)
    idle_until = time.monotonic() + STATISTICS_SECONDS + 4  # longer than the stuck threshold
    while time.monotonic() < idle_until:  # polled as the console does, idle all along
        assert mine().unacked == 0
        time.sleep(0.5)
    channel.basic_publish("", queue, b"job")
    took = wait_until(lambda: (load := mine()) and load.unacked == 1 and load)

    assert took.flags == []  # its silence began when it took the job, not when it connected
    later = wait_until(lambda: (load := mine()) and load.flags and load, timeout=15)
    assert [flag.kind for flag in later.flags] == ["stuck"]


def test_only_tenant_queues_and_their_dead_letter_queues_are_work(
    session_for, channel, unique, pod
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    other_app = unique("reports")
    channel.queue_declare(other_app, durable=True)
    worker = pod(unique("pod-mixed"))
    for consumed in (queue, f"{queue}.dlq", other_app):
        worker.consume(consumed, prefetch=1, expect=0, auto_ack=True)
    session = session_for(tenant_exchange=exchange)

    def mine():
        loads = [load for load in fetch_consumers(session).loads if load.connection == worker.name]
        return loads if len(loads) == 3 else None

    loads = {load.queue: load for load in wait_until(mine, what="the pod's three consumers")}
    assert {name: (load.work, [f.kind for f in load.flags]) for name, load in loads.items()} == {
        queue: (True, ["auto-ack"]),
        f"{queue}.dlq": (True, ["auto-ack"]),
        other_app: (False, []),  # another application's queue: not the tenants' work
    }
