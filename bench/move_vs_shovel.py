"""Moving messages: Warren's mover against the broker's own shovel ("Move messages"), same run.

Builds its own disposable broker, fills a priority queue with persistent 512-byte messages, then,
round after round, moves them A -> B with a dynamic shovel (ack-mode on-confirm, prefetch 1000,
src-delete-after queue-length: what the management UI's "Move messages" does) and back B -> A
with the mover (its default window). Prints msg/s per round, the medians, their ratio, and the
peak RSS of this process.
Run: .venv/bin/python bench/move_vs_shovel.py [--messages 50000] [--rounds 3]
"""

import argparse
import resource
import statistics
import time

import pika
import requests

from dashboard.actions.mover import Mover, to_queue
from dashboard.broker.management import api_path
from dashboard.broker.session import Session
from dashboard.local.rabbitmq import LocalBroker
from dashboard.settings import load_settings

BODY = b"x" * 512


def fill(broker: LocalBroker, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = connection.channel()
    for name in ("bench-a", "bench-b"):
        channel.queue_declare(name, durable=True, arguments={"x-max-priority": 10})
    properties = pika.BasicProperties(delivery_mode=2, priority=1)
    for _ in range(count):
        channel.basic_publish("", queue, BODY, properties)
    connection.close()


def wait_for(session: Session, queue: str, count: int, timeout: float = 600) -> float:
    """Seconds until `queue` holds `count` ready messages (asked over AMQP every 50 ms)."""
    started = time.perf_counter()
    while session.ready_count(queue) < count:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{queue} did not reach {count}")
        time.sleep(0.05)
    return time.perf_counter() - started


def shovel(
    broker: LocalBroker, session: Session, source: str, target: str, count: int, name: str
) -> float:
    started = time.perf_counter()
    requests.put(
        broker.management_url + api_path("parameters", "shovel", "/", name),
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
    wait_for(session, target, count)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count = args.messages
    shovel_rates, mover_rates = [], []
    with LocalBroker.create() as broker:
        settings = load_settings(management_url=broker.management_url, amqp_url=broker.amqp_url)
        with Session(settings) as session:
            fill(broker, "bench-a", count)
            filled = wait_for(session, "bench-a", count)
            print(f"{count:,} messages of {len(BODY)} bytes in bench-a ({filled:.1f} s to settle)")
            for number in range(1, args.rounds + 1):
                shovel_seconds = shovel(
                    broker, session, "bench-a", "bench-b", count, f"bench-move-{number}"
                )
                result = Mover(session, "bench-b", to_queue("bench-a"), limit=count).run()
                assert (result.moved, session.ready_count("bench-a")) == (count, count), result
                shovel_rates.append(count / shovel_seconds)
                mover_rates.append(count / result.seconds)
                print(
                    f"round {number}: shovel a->b {shovel_rates[-1]:8,.0f} msg/s, "
                    f"mover b->a {mover_rates[-1]:8,.0f} msg/s"
                )
    shovel_rate, mover_rate = statistics.median(shovel_rates), statistics.median(mover_rates)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median shovel: {shovel_rate:8,.0f} msg/s")
    print(f"median mover:  {mover_rate:8,.0f} msg/s")
    print(f"mover / shovel: {mover_rate / shovel_rate:.2f}x")
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
