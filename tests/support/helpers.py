"""What tests share: waiting for exact outcomes, counting over AMQP (the truth, with no stats
lag, and independent of Warren's own code), setting up queues and messages, pods that hold
messages unacked, and the CLI run as a real process."""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pytest

from dashboard.broker.amqp import close_quietly, connect
from dashboard.local.rabbitmq import LocalBroker
from dashboard.local.workload import declare_tenant
from dashboard.reads.history import History
from dashboard.reads.overview import fetch_overview
from dashboard.settings import Settings

DASHBOARD = (sys.executable, "-m", "dashboard")


def wait_until(condition: Callable[[], object], timeout: float = 30, what: str = "condition"):
    """Poll `condition` until it returns something truthy; fail the test after `timeout` s.

    The management API's stats lag AMQP by a collection interval: tests wait for the exact
    numbers AMQP reported rather than sleeping a guessed time.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def queue_counts(settings: Settings, queue: str) -> tuple[int, int]:
    """(ready, consumers) of `queue` from AMQP, on a connection of the test's own (to the first
    node of `settings` that accepts one)."""
    connection = connect(settings, "warren-test-count")
    try:
        return ready_and_consumers(connection.channel(), queue)
    finally:
        close_quietly(connection)


def ready_count(settings: Settings, queue: str) -> int:
    return queue_counts(settings, queue)[0]


def fill(channel, queue: str, count: int, headers: dict | None = None, **properties) -> None:
    """`count` persistent messages m-0, m-1, ... (body and message id), header n = number."""
    for number in range(count):
        channel.basic_publish(
            "",
            queue,
            f"m-{number}".encode(),
            pika.BasicProperties(
                delivery_mode=2,
                message_id=f"m-{number}",
                headers={"n": number, **(headers or {})},
                **properties,
            ),
            mandatory=True,
        )


def drain(channel, queue: str) -> list[tuple[bytes, pika.BasicProperties]]:
    """Every message of `queue`, taken for good, in queue order."""
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return messages
        messages.append((body, properties))


def declare(channel, *queues: str, **arguments) -> None:
    for queue in queues:
        channel.queue_declare(queue, durable=True, arguments=arguments or None)


def publish(channel, exchange: str, routing_key: str, count: int) -> None:
    for number in range(count):
        channel.basic_publish(
            exchange,
            routing_key,
            f"message {number}".encode(),
            pika.BasicProperties(delivery_mode=2),
            mandatory=True,
        )


def tenant_with_messages(channel, exchange: str, tenant: str, queue: str, count: int) -> str:
    declare_tenant(channel, exchange, tenant, queue=queue)
    publish(channel, exchange, tenant, count)
    return queue


def history_for(session, tmp_path: Path) -> History:
    """A history file of the test's own for the session's broker, keeping a day."""
    return History(tmp_path / "h.sqlite", 86400, session.settings.management_url)


def overview_where(session, condition):
    """The overview once `condition` (tenant -> row) holds: the broker's statistics lag."""
    return wait_until(
        lambda: (
            (view := fetch_overview(session))
            and condition({row.tenant: row for row in view.rows})
            and view
        ),
        what="the overview to settle",
    )


def flags(overview) -> dict[str, list[str]]:
    return {row.tenant: [flag.kind for flag in row.flags] for row in overview.rows}


def ready_and_consumers(channel, queue: str) -> tuple[int, int]:
    """AMQP's own answer: messages ready and consumers on `queue`, with no stats lag."""
    method = channel.queue_declare(queue, passive=True).method
    return method.message_count, method.consumer_count


class Holder:
    """A pod that takes messages under a prefetch window and never acks them."""

    def __init__(self, broker: LocalBroker, name: str = "holder", vhost: str = "/"):
        params = pika.ConnectionParameters(
            host="127.0.0.1",
            port=broker.amqp_port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials("guest", "guest"),
            client_properties={"connection_name": name},
        )
        self.name = name
        self.connection = pika.BlockingConnection(params)
        self.held: dict[str, int] = {}
        # Per queue, the channel and delivery tags of the messages held, oldest first.
        self.deliveries: dict[str, list] = {}

    def hold(self, queue: str, prefetch: int, expect: int) -> int:
        """Consume `queue` with `prefetch` until `expect` messages are held; returns the count."""
        tag = self.consume(queue, prefetch, expect)
        return self.held[tag]

    def consume(
        self,
        queue: str,
        prefetch: int,
        expect: int,
        tag: str = "",
        auto_ack: bool = False,
        channel=None,
    ) -> str:
        """Start a consumer (on its own channel, unless given one) and wait for `expect`
        deliveries; its tag."""
        channel = channel or self.connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        tag = tag or f"ctag-{channel.channel_number}"
        self.held[tag] = 0

        def keep(channel, method, _properties, _body) -> None:
            self.held[tag] += 1
            self.deliveries.setdefault(queue, []).append((channel, method.delivery_tag))

        channel.basic_consume(queue, keep, auto_ack=auto_ack, consumer_tag=tag)
        for _ in range(100):
            if self.held[tag] >= expect:
                break
            self.connection.process_data_events(time_limit=0.1)
        return tag

    def ack_one(self, queue: str) -> None:
        channel, tag = self.deliveries[queue].pop(0)
        channel.basic_ack(tag)
        self.connection.process_data_events(time_limit=0.1)

    def reject_all(self, queue: str) -> None:
        """Reject without requeue every message held from `queue`: the broker dead-letters them."""
        for channel, tag in self.deliveries.pop(queue, []):
            channel.basic_reject(tag, requeue=False)
        self.connection.process_data_events(time_limit=0.1)

    def close(self) -> None:
        close_quietly(self.connection)


# The test broker's vhost `/` keeps every test's queues, thousands by the end of a run: Warren
# reads the statistics there as in a small vhost (the tests of the way at scale set 0).
STATISTICS_UP_TO = 1_000_000


def cli_environment(broker, audit_db=None, **env: str) -> dict[str, str]:
    """This process's environment without any WARREN_ setting, pointed at `broker`."""
    environment = {name: value for name, value in os.environ.items() if "WARREN_" not in name}
    environment |= {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_AMQP_URL": broker.amqp_url,
        "WARREN_STATISTICS_UP_TO": str(STATISTICS_UP_TO),
    }
    # Never the home directory's files; without an audit log, an audit log and a history of
    # this run alone.
    folder = Path(audit_db).parent if audit_db else Path(tempfile.mkdtemp(prefix="warren-cli-"))
    environment["WARREN_HISTORY_DB"] = str(folder / "history.sqlite")
    environment["WARREN_AUDIT_DB"] = str(audit_db or folder / "audit.sqlite")
    return environment | env


def run_cli(broker, audit_db, *args: str, entry=DASHBOARD, timeout: float = 120, **env: str):
    """Run the CLI to its end; without `audit_db` the audit log goes to a folder of its own."""
    return subprocess.run(
        [*entry, *args],
        env=cli_environment(broker, audit_db, **env),
        cwd=broker.base_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ready_once_returned(settings, queues: list[str], count: int) -> list[int]:
    """Ready counts of `queues` once at least `count` messages are ready among them: the broker
    returns a killed client's unacked messages to ready a moment after the process dies."""
    counts: list[int] = []

    def all_back() -> bool:
        counts[:] = [ready_count(settings, queue) for queue in queues]
        return sum(counts) >= count

    wait_until(all_back, what=f"{count:,} messages ready in {', '.join(queues)}")
    return counts


def message_labels(app) -> list[str]:
    """The labels of the messages a page shows (their expanders are labelled "#1 · ...")."""
    return [expander.label for expander in app.expander if expander.label.startswith("#")]
