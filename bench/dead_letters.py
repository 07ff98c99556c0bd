"""Dead letters at incident scale: browse, search and discard in a 100,000-message dead-letter
queue, whole CLI processes, beside the broker's own way (the management API's "Get messages",
requeueing) measured in the same run on the same queue.

Builds its own disposable broker; every message is really dead-lettered (a tenant queue with a
TTL of 0 passes each one on to its dead-letter queue, with its x-death). After each step the
queue is read through once more to check what the step left: every message still there, in
its order (the discard: all but the 1,000 it deleted, whose ids are in the audit log).
Run: .venv/bin/python bench/dead_letters.py [--messages 100000]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika
import requests

from dashboard.actions.audit import AuditLog
from dashboard.broker.management import api_path
from dashboard.broker.session import Session
from dashboard.broker.sweep import Sweep
from dashboard.local.rabbitmq import LocalBroker
from dashboard.settings import load_settings

ERRORS = ("timeout", "bad-input", "oom", "upstream-503", "unknown")
DISCARDED = 1_000


def fill(broker: LocalBroker, count: int) -> str:
    """`count` JSON jobs (about 200 bytes) dead-lettered into `jobs.dlq`, in order."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = connection.channel()
    channel.queue_declare("jobs.dlq", durable=True)
    arguments = {
        "x-message-ttl": 0,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "jobs.dlq",
    }
    channel.queue_declare("jobs", durable=True, arguments=arguments)
    for number in range(count):
        error = ERRORS[number % len(ERRORS)]
        body = json.dumps(
            {"job": f"job-{number}", "tenant": "acme", "error": error, "pad": "x" * 120}
        )
        properties = pika.BasicProperties(
            delivery_mode=2, message_id=f"job-{number}", headers={"error": error}
        )
        channel.basic_publish("", "jobs", body.encode(), properties)
    connection.close()
    return "jobs.dlq"


def ids_in_queue(session: Session, queue: str, expected: int) -> list[str]:
    """The ids in the queue, in order, once the broker has put back all `expected` (it does so
    a moment after a pass closed its channels)."""
    deadline = time.monotonic() + 60
    while (ready := session.ready_count(queue)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    ids: list[str] = []
    Sweep(session, queue, ready, lambda d: ids.append(d.properties.message_id) or False).run()
    return ids


def cli(broker: LocalBroker, audit: Path, *args: str) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARREN_")} | {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_AMQP_URL": broker.amqp_url,
        "WARREN_AUDIT_DB": str(audit),
        "WARREN_HISTORY_DB": str(audit.parent / "history.sqlite"),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dashboard", *args, "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout)


def management_get(broker: LocalBroker, queue: str, count: int) -> tuple[float, int]:
    """The management UI's "Get messages" with requeue, `count` at once."""
    started = time.perf_counter()
    answer = requests.post(
        broker.management_url + api_path("queues", "/", queue, "get"),
        json={"count": count, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 500},
        auth=("guest", "guest"),
        timeout=600,
    )
    answer.raise_for_status()
    return time.perf_counter() - started, len(answer.json())


def peak_rss_of_children() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    count = args.messages
    expected = [f"job-{number}" for number in range(count)]
    with LocalBroker.create() as broker, tempfile.TemporaryDirectory() as scratch:
        audit = Path(scratch) / "audit.sqlite"
        settings = load_settings(management_url=broker.management_url, amqp_url=broker.amqp_url)
        with Session(settings) as session:
            started = time.perf_counter()
            queue = fill(broker, count)
            while session.ready_count(queue) < count:
                time.sleep(0.2)
            print(f"{count:,} dead letters in {queue} ({time.perf_counter() - started:.1f} s)")

            browsing, seen = cli(broker, audit, "browse", "--queue", queue, "--by-header", "error")
            assert seen["seen"] == count, seen["seen"]
            print(
                f"browse + tally:      {browsing:6.1f} s  ({count / browsing:8,.0f} msg/s), "
                f"by reason {seen['tally']['by_reason']}, {len(seen['tally']['by_minute'])} "
                f"minutes, by header {len(seen['tally']['by_header'])} values"
            )
            assert ids_in_queue(session, queue, count) == expected
            print("  after it: every message still there, in its order")

            text = f'"job-{count // 2}"'
            seconds, found = cli(broker, audit, "browse", "--queue", queue, "--text", text)
            assert found["matching"] == 1, found["matching"]
            print(
                f"search body text:    {seconds:6.1f} s  ({count / seconds:8,.0f} msg/s), 1 found"
            )

            by_error = cli(broker, audit, "browse", "--queue", queue, "--header", "error=oom")
            print(f"search by header:    {by_error[0]:6.1f} s, {by_error[1]['matching']:,} found")

            doomed = expected[1 :: (count // DISCARDED)][:DISCARDED]
            flags = [flag for name in doomed for flag in ("--message-id", name)]
            seconds, done = cli(broker, audit, "discard", "--queue", queue, *flags, "--yes")
            assert done["discarded"] == DISCARDED, done["discarded"]
            print(f"discard {DISCARDED:,} by id:  {seconds:6.1f} s, {done['ready_after']:,} left")
            kept = [name for name in expected if name not in set(doomed)]
            assert ids_in_queue(session, queue, len(kept)) == kept
            [record] = [r for r in AuditLog(audit).records() if r.action == "discard"]
            assert record.counts["ids"] == doomed
            print("  after it: the others in their order, the 1,000 ids in the audit log")
            print(f"peak RSS of a CLI process: {peak_rss_of_children():.0f} MB")

            left = count - DISCARDED
            for asked in (10_000, left):
                started = time.perf_counter()
                try:
                    seconds, got = management_get(broker, queue, asked)
                    said = f"{seconds:.1f} s ({got / seconds:,.0f} msg/s)"
                except requests.RequestException as exc:
                    said = (
                        f"failed after {time.perf_counter() - started:.1f} s ({type(exc).__name__})"
                    )
                while session.ready_count(queue) < left:
                    time.sleep(0.2)
                back = time.perf_counter() - started
                order = "kept" if ids_in_queue(session, queue, len(kept)) == kept else "NOT kept"
                print(
                    f"broker's own way, management API get (requeue) of {asked:,}: {said}; all "
                    f"back after {back:.1f} s, order {order}"
                )


if __name__ == "__main__":
    main()
