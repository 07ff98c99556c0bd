"""Moving messages: Warren's mover against the broker's own shovel ("Move messages"), same run.

Builds its own disposable broker, fills a priority queue with persistent 512-byte messages,
moves them A -> B with a dynamic shovel (ack-mode on-confirm, prefetch 1000,
src-delete-after queue-length: what the management UI's "Move messages" does), then B -> C with
the mover (window 1000), and prints msg/s for both, the ratio, and the peak RSS of this process.
Run: .venv/bin/python bench/move_vs_shovel.py [--messages 50000]
"""

import argparse
import resource
import time

import pika
import requests

from dashboard.amqp import ready_count
from dashboard.localbroker import LocalBroker
from dashboard.management import api_path
from dashboard.mover import Mover, to_queue
from dashboard.settings import load_settings

BODY = b"x" * 512


def fill(broker: LocalBroker, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = connection.channel()
    for name in ("bench-a", "bench-b", "bench-c"):
        channel.queue_declare(name, durable=True, arguments={"x-max-priority": 10})
    properties = pika.BasicProperties(delivery_mode=2, priority=1)
    for _ in range(count):
        channel.basic_publish("", queue, BODY, properties)
    connection.close()


def wait_for(settings, queue: str, count: int, timeout: float = 600) -> float:
    """Seconds until `queue` holds `count` ready messages (asked over AMQP every 50 ms)."""
    started = time.perf_counter()
    while ready_count(settings, queue) < count:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{queue} did not reach {count}")
        time.sleep(0.05)
    return time.perf_counter() - started


def shovel(broker: LocalBroker, settings, source: str, target: str, count: int) -> float:
    started = time.perf_counter()
    requests.put(
        broker.management_url + api_path("parameters", "shovel", "/", "bench-move"),
        json={
            "value": {
                "src-protocol": "amqp091",
                "src-uri": "amqp://",
                "src-queue": source,
                "src-prefetch-count": 1000,
                "src-delete-after": "queue-length",
                "dest-protocol": "amqp091",
                "dest-uri": "amqp://",
                "dest-queue": target,
                "ack-mode": "on-confirm",
            }
        },
        auth=("guest", "guest"),
        timeout=30,
    ).raise_for_status()
    wait_for(settings, target, count)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    count = args.messages
    with LocalBroker.create() as broker:
        settings = load_settings(management_url=broker.management_url, amqp_url=broker.amqp_url)
        fill(broker, "bench-a", count)
        filled = wait_for(settings, "bench-a", count)
        print(f"{count:,} messages of {len(BODY)} bytes in bench-a ({filled:.1f} s to settle)")
        shovel_seconds = shovel(broker, settings, "bench-a", "bench-b", count)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = Mover(settings, "bench-b", to_queue("bench-c"), limit=count, window=1000).run()
        assert (result.moved, ready_count(settings, "bench-c")) == (count, count), result
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    shovel_rate, mover_rate = count / shovel_seconds, count / result.seconds
    print(f"shovel: {shovel_seconds:6.1f} s  {shovel_rate:8,.0f} msg/s")
    print(f"mover:  {result.seconds:6.1f} s  {mover_rate:8,.0f} msg/s")
    print(f"mover / shovel: {mover_rate / shovel_rate:.2f}x")
    print(
        f"peak RSS of this process: {rss_after / 1024:.0f} MB ({rss_before / 1024:.0f} MB before)"
    )


if __name__ == "__main__":
    main()
