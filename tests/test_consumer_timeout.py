"""A real node started with a 5 s consumer timeout, and a real Celery worker meeting its real 406:
flagged near the timeout while it holds its job, its channel closed by the broker, the job back
to ready, and the pod restarted into the same 406 until its tenant shows a redelivery loop."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import pytest
from celery import Celery

from dashboard.broker.session import Session
from dashboard.local.rabbitmq import LocalBroker
from dashboard.reads.consumers import AckWatch, fetch_consumers
from dashboard.reads.history import open_history
from dashboard.reads.models import ConsumerLoad
from dashboard.reads.poll import overview_poll
from tests.support.helpers import ready_and_consumers, tenant_with_messages, wait_until

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 5
# A prefork worker that meets the 406 shuts down warm: it exits only once the job it runs ends
# (a solo worker, blocked in the job, never even reads the 406, and reconnects after it). Longer
# than the timeout, so the broker acts first; short, so that three pod lives take seconds.
JOB_SECONDS = 8
# A worker exits this long after its job ended (about 2 s), unless its shutdown hangs.
SHUTDOWN_SECONDS = 10
TENANT = "acme"
# "[2026-12-03 13:27:21,378: INFO/MainProcess] Task job[...] received"
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): (\w+)/MainProcess\] (.*)$")


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[LocalBroker]:
    """This module's node, in place of conftest's: every fixture on it (`session_for`,
    `channel`) reaches this one."""
    node = LocalBroker.create(
        tmp_path_factory.mktemp("timeout"), consumer_timeout_ms=TIMEOUT_SECONDS * 1000
    )
    with node:
        yield node


@pytest.fixture
def session(session_for, unique) -> Session:
    """Told the node's consumer timeout, with a stuck threshold below it."""
    return session_for(
        tenant_exchange=unique("tenants"),
        consumer_timeout_seconds=TIMEOUT_SECONDS,
        stuck_after_seconds=3,
        # Three pod lives of a few seconds each, with room for the sample before them.
        redelivery_window_seconds=120,
    )


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen]]:
    """The Celery workers a test starts, each in its own process group (its pool's children
    with it); whatever still runs at the end is stopped."""
    started: list[subprocess.Popen] = []
    yield started
    for worker in started:
        if worker.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=5)
        stop_group(worker)


def start_worker(broker: LocalBroker, queue: str, name: str, log: Path) -> subprocess.Popen:
    """One pod: a prefork worker of one process (prefetch 1), logging at info level to `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.support.celery_app", "-b",
             broker.amqp_url, "worker", "-n", name, "--pool", "prefork", "--concurrency", "1",
             "-l", "info"],
            env=os.environ | {"WARREN_TEST_QUEUE": queue},
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def logged_at(log: Path, text: str) -> float | None:
    """When the worker's main process first logged a line containing `text` (epoch seconds)."""
    for line in log.read_text(errors="replace").splitlines():
        found = LOG_LINE.match(line)
        if found and text in found[3]:
            return datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def test_a_celery_worker_meets_the_consumer_timeout_and_its_tenant_loops(
    broker, session, channel, unique, workers, tmp_path
):
    settings = session.settings
    queue = tenant_with_messages(channel, settings.tenant_exchange, TENANT, unique("acme"), 0)
    name = f"{unique('pod-celery')}@host"
    history = open_history(settings)
    assert history is not None
    overview = overview_poll(session, history)
    loop_seen: list[float] = []

    def tenant_flags() -> list[str] | None:
        """One poll of the overview, recorded in the history as a console's are: the tenant's
        flags, once the broker has counted its queue (None before)."""
        snapshot = overview.refresh()
        assert snapshot.error is None, snapshot.error
        [row] = [row for row in snapshot.data.rows if row.tenant == TENANT]
        kinds = [flag.kind for flag in row.flags]
        if "redelivery-loop" in kinds and not loop_seen:
            loop_seen.append(time.time())
        return kinds if row.counted else None

    with Celery("warren-test-producer", broker=broker.amqp_url) as producer:
        producer.send_task(
            "job", args=[JOB_SECONDS], exchange=settings.tenant_exchange, routing_key=TENANT
        )
    # Celery publishes unconfirmed, on a connection of its own: the job is ready a moment later.
    wait_until(lambda: ready_and_consumers(channel, queue) == (1, 0), what="the job ready")
    assert wait_until(tenant_flags, what="the history's first sample") == ["no-consumer"]

    watch = AckWatch()  # the memory of a console's consumer polls, from before the pod
    lives = []
    for life in range(3):  # the pod, restarted twice as its cluster would
        log = tmp_path / f"worker-{life}.log"
        worker = start_worker(broker, queue, name, log)
        workers.append(worker)
        delivered = wait_until(
            lambda log=log: (
                fetch_consumers(session, watch)
                and tenant_flags() is not None
                and logged_at(log, "] received")
            ),
            timeout=60,
            what=f"worker {life} to take the job",
        )
        if life == 0:
            near, flagged_at = near_the_timeout(session, watch, name, queue)
            assert (near.unacked, near.timeout_seconds) == (1, TIMEOUT_SECONDS)
            assert [flag.kind for flag in near.flags] == ["stuck", "near-consumer-timeout"]
        ended = wait_until(
            lambda worker=worker, log=log, delivered=delivered: (
                tenant_flags() is not None and ended_or_hung(worker, log, delivered)
            ),
            timeout=JOB_SECONDS + 60,
            what=f"worker {life} to exit on its own",
        )
        ended_at = time.time()
        text = log.read_text(errors="replace")
        assert "PRECONDITION_FAILED" in text and "(406)" in text, text
        closed = logged_at(log, "PRECONDITION_FAILED")
        if life == 0:
            assert flagged_at < closed  # flagged before the broker closed the channel
        if ended == "hung":
            stop_group(worker)
        else:
            assert worker.returncode == 1, text
        lives.append((delivered, closed, ended, ended_at))
        # Back to ready when the broker closed the channel, and nobody consumes it.
        assert ready_and_consumers(channel, queue) == (1, 0)

    looping = wait_until(
        lambda: (kinds := tenant_flags()) and "redelivery-loop" in kinds and kinds,
        timeout=10,
        what="redelivery-loop",
    )
    assert looping == ["no-consumer", "redelivery-loop"]

    first = lives[0][0]
    print(
        f"\nconsumer timeout {TIMEOUT_SECONDS} s, job {JOB_SECONDS} s; from the first delivery: "
        f"near-consumer-timeout seen {flagged_at - first:.1f} s (held since "
        f"{near.acks_unchanged_since.timestamp() - first:+.1f} s, per Warren), "
        f"redelivery-loop first seen {loop_seen[0] - first:.1f} s"
    )
    for life, (delivered, closed, ended, ended_at) in enumerate(lives):
        how = "exit" if ended == "exited" else "hung in its shutdown, killed"
        print(
            f"worker {life}: took the job at {delivered - first:+.1f} s; from then: "
            f"406 {closed - delivered:.1f} s, {how} {ended_at - delivered:.1f} s"
        )


def near_the_timeout(
    session: Session, watch: AckWatch, name: str, queue: str
) -> tuple[ConsumerLoad, float]:
    """The worker's load on `queue` once flagged near the consumer timeout, and when, polled
    with the memory of the polls before, which may have seen the worker idle while it already
    held its job (the statistics they read lag): the hold must not start at the poll that first
    saw it, a stats emission or two after the delivery, which with a 5 s timeout is after the
    406."""

    def flagged():
        loads = [c for c in fetch_consumers(session, watch).loads if c.connection == name]
        load = next((load for load in loads if load.queue == queue), None)
        kinds = [flag.kind for flag in load.flags] if load else []
        return load if "near-consumer-timeout" in kinds else None

    near = wait_until(flagged, timeout=TIMEOUT_SECONDS, what="near-consumer-timeout")
    return near, time.time()


def ended_or_hung(worker: subprocess.Popen, log: Path, delivered: float) -> str | None:
    """How the worker's life ended: "exited"; or "hung" when, well after its job ended, it is
    still in its shutdown (Celery 5.7 on RabbitMQ 4.0, now and then: py-amqp waits for a
    Channel.CloseOk that never comes, until the broker's heartbeat timeout drops it minutes
    later)."""
    if worker.poll() is not None:
        return "exited"
    late = time.time() > delivered + JOB_SECONDS + SHUTDOWN_SECONDS
    return "hung" if late and "succeeded in" in log.read_text(errors="replace") else None


def stop_group(worker: subprocess.Popen) -> None:
    """Stop a worker and its pool, as a liveness probe's restart would."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
