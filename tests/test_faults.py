"""A broker that stops and comes back, on the second node (stopping the shared one would
disturb every other test): polling shows it stale and recovers without leaking threads or
sockets; a move it interrupts stops with exact counts, nothing lost, and a rerun completes."""

import json
import os
import subprocess
import threading

import pika
import pytest

from dashboard.actions.audit import AuditLog
from dashboard.actions.mover import MAX_WINDOW, Mover, to_queue
from dashboard.broker.amqp import close_quietly
from dashboard.broker.session import Session
from dashboard.reads.overview import PARALLEL
from dashboard.reads.poll import overview_poll
from dashboard.settings import load_settings
from tests.support.helpers import (
    DASHBOARD,
    cli_environment,
    drain,
    fill,
    ready_count,
    run_cli,
    tenant_with_messages,
    wait_until,
)


@pytest.fixture
def node(second_broker):
    return second_broker


@pytest.fixture
def node_settings(node, tmp_path):
    return load_settings(
        management_url=node.management_url,
        amqp_url=node.amqp_url,
        metrics_url=node.metrics_url,
        refresh_seconds=1,
        request_timeout=2,
        history_db=tmp_path / "history.sqlite",
        audit_db=tmp_path / "audit.sqlite",
    )


@pytest.fixture
def node_session(node_settings):
    """Sessions on the node, from `node_settings` with `updates`; all closed after the test."""
    made: list[Session] = []

    def make(**updates) -> Session:
        made.append(Session(node_settings.model_copy(update=updates)))
        return made[-1]

    yield make
    for session in made:
        session.close()


def confirming_channel(node):
    channel = pika.BlockingConnection(pika.URLParameters(node.amqp_url)).channel()
    channel.confirm_delivery()
    return channel


@pytest.fixture
def node_channel(node):
    """A channel for setting up; the broker's stop may close it under the test."""
    channel = confirming_channel(node)
    yield channel
    close_quietly(channel.connection)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_polling_through_a_broker_stop_shows_stale_data_then_recovers(
    node, node_session, node_channel, unique
):
    exchange = unique("tenants")
    tenant_with_messages(node_channel, exchange, "acme", unique("acme"), 4)
    poll = overview_poll(node_session(tenant_exchange=exchange), None)
    good = wait_until(
        lambda: (snap := poll.get()).data and snap.data.totals.ready == 4 and snap,
        what="4 ready messages",
    )
    threads, descriptors = threading.active_count(), open_descriptors()

    node.ctl("stop_app")
    try:
        down = wait_until(lambda: (snap := poll.get()).stale and snap, what="the poll to fail")
        failed = poll.fetches
        wait_until(lambda: poll.get() and poll.fetches >= failed + 5, what="5 more failed polls")
    finally:
        node.ctl("start_app")
    back = wait_until(lambda: not (snap := poll.get()).stale and snap, what="recovery", timeout=60)

    assert down.data.totals == good.data.totals and "refused" in str(down.error)
    assert back.fetched_at > down.failing_since
    assert [row.tenant for row in back.data.rows] == ["acme"]
    assert threading.active_count() <= threads
    # The session's pool may hold a new socket per request a read asks at once: no more.
    assert open_descriptors() <= descriptors + PARALLEL


def test_a_broker_restart_during_a_move_loses_nothing_and_a_rerun_completes(
    node, node_settings, node_session, node_channel, unique
):
    source, target = unique("src"), unique("dst")
    for queue in (source, target):
        node_channel.queue_declare(queue, durable=True)
    fill(node_channel, source, 30000)
    # Slowed down, so that the restart lands mid-move.
    moving = Mover(node_session(), source, to_queue(target), limit=30000, rate=2000)
    outcome = []
    mover = threading.Thread(target=lambda: outcome.append(moving.run()))
    mover.start()
    wait_until(lambda: ready_count(node_settings, target) >= 3000, what="3,000 moved")

    node.ctl("stop_app")
    node.ctl("start_app")
    mover.join(timeout=60)

    [result] = outcome
    # The broker closes the connection, or first the channel (its queues went away under it).
    assert result.stopped.startswith(("the connection closed", "a channel closed"))
    assert not result.clean
    in_source = ready_count(node_settings, source)
    in_target = ready_count(node_settings, target)
    assert in_target >= result.moved  # every confirmed copy survived the restart
    assert 30000 <= in_source + in_target <= 30000 + MAX_WINDOW
    # What is in both places, the result counted as perhaps so.
    assert 0 < in_source + in_target - 30000 <= result.may_be_duplicated

    rerun = Mover(node_session(), source, to_queue(target), limit=in_source).run()

    assert rerun.clean and rerun.moved == in_source
    after = confirming_channel(node)
    ids = {properties.message_id for _, properties in drain(after, target)}
    close_quietly(after.connection)
    assert ids == {f"m-{n}" for n in range(30000)}


def test_a_broker_killed_during_a_requeue_is_counted_honestly_and_the_rerun_warned(
    node, node_settings, node_channel, unique, tmp_path
):
    source, target = unique("src"), unique("dst")
    for queue in (source, target):
        node_channel.queue_declare(queue, durable=True)
    fill(node_channel, source, 20000)
    audit = tmp_path / "audit.sqlite"
    command = ["requeue", "--from", source, "--to", target, "--rate", "4000", "--yes", "--json"]
    running = subprocess.Popen(
        [*DASHBOARD, *command], env=cli_environment(node, audit), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until(lambda: ready_count(node_settings, target) >= 3000, what="3,000 moved")

    node.kill()
    out, _err = running.communicate(timeout=60)
    node.start()

    done = json.loads(out)
    in_source = ready_count(node_settings, source)
    in_target = ready_count(node_settings, target)
    assert in_source + in_target >= 20000  # nothing lost
    assert in_source + in_target - 20000 <= done["may_be_duplicated"]
    [record] = AuditLog(audit).records()
    assert record.outcome == "stopped"
    assert record.counts["may_be_duplicated"] == done["may_be_duplicated"]
    dry = run_cli(node, audit, "requeue", "--from", source, "--to", target, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        f"Note: the last requeue from {source!r} (" in dry.stdout
        and f"ended stopped with up to {done['may_be_duplicated']:,} messages perhaps in both"
        in dry.stdout
    ), dry.stdout
