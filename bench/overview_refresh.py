"""What an overview costs at 20, 1,000 and 10,000 tenant queues, against the naive fetch.

Builds its own disposable broker with one vhost per size (built once per run, via
`POST /api/definitions`), then times, side by side in the same run:
  - refresh: the console's warm poll, counts from the broker's metrics endpoint laid over the
    topology it keeps;
  - first read: a fresh poll's first overview (what a first page waits for): above
    WARREN_STATISTICS_UP_TO queues, the topology without statistics and the counts, asked at
    once;
  - statistics: one listing of everything with the management API's statistics (what the poll
    does every WARREN_TOPOLOGY_SECONDS, in its background);
  - naive: every field of every queue plus every binding of the vhost;
  - the one-shot `warren tenants --json` as a whole process, against a whole process that only
    does the naive `GET /api/queues/{vhost}`: cold (no topology kept: it lists the topology
    while it reads the counts) and warm (the topology the run before kept, as a console's or a
    watcher's poll keeps it, reused: only the counts are asked).
Every way's ready and consumer counts are checked against AMQP's (a passive declare of each
queue) before timing. The last line gives how each cost grows from 1,000 to 10,000 tenants.
Run: .venv/bin/python bench/overview_refresh.py [--sizes 20 1000 10000] [--repeat 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import pika
import requests

from dashboard.broker.management import api_path
from dashboard.broker.session import Session
from dashboard.local.rabbitmq import LocalBroker
from dashboard.reads.kept_topology import kept_topologies
from dashboard.reads.overview import OverviewReader, fetch_overview
from dashboard.settings import load_settings
from dashboard.tuning import tune_garbage_collector

EXCHANGE = "tenants"


def build_vhost(broker: LocalBroker, vhost: str, tenants: int) -> None:
    auth = ("guest", "guest")
    requests.put(
        f"{broker.management_url}{api_path('vhosts', vhost)}", auth=auth
    ).raise_for_status()
    requests.put(
        f"{broker.management_url}{api_path('permissions', vhost, 'guest')}",
        json={"configure": ".*", "write": ".*", "read": ".*"},
        auth=auth,
    ).raise_for_status()
    names = [f"tenant-{number:05d}" for number in range(tenants)]
    definitions = {
        "exchanges": [
            {"name": EXCHANGE, "vhost": vhost, "type": "direct", "durable": True,
             "auto_delete": False, "internal": False, "arguments": {}}
        ],
        "queues": [
            {"name": f"q.{name}", "vhost": vhost, "durable": True, "auto_delete": False,
             "arguments": {"x-max-priority": 10}}
            for name in names
        ],
        "bindings": [
            {"source": EXCHANGE, "vhost": vhost, "destination": f"q.{name}",
             "destination_type": "queue", "routing_key": name, "arguments": {}}
            for name in names
        ],
    }  # fmt: skip
    requests.post(
        broker.management_url + api_path("definitions"),
        json=definitions,
        auth=("guest", "guest"),
        timeout=600,
    ).raise_for_status()
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_for(vhost)))
    channel = connection.channel()
    for number, name in enumerate(names):
        for _ in range(number % 5):
            channel.basic_publish(EXCHANGE, name, b"job")
    connection.close()


def timed(action, repeat: int) -> float:
    """Median seconds of `repeat` runs (after one warm-up run)."""
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def timed_in_turn(*actions, repeat: int) -> list[float]:
    """Median seconds of `repeat` runs of each action, one of each in turn (after a warm-up of
    each)."""
    for action in actions:
        action()
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, taken in zip(actions, samples, strict=True):
            started = time.perf_counter()
            action()
            taken.append(time.perf_counter() - started)
    return [statistics.median(taken) for taken in samples]


def naive_refresh(session: requests.Session, base: str, vhost: str) -> int:
    queues = session.get(f"{base}{api_path('queues', vhost)}").content
    bindings = session.get(f"{base}{api_path('bindings', vhost)}").content
    return len(queues) + len(bindings)


NAIVE_PROCESS = """
import sys, requests
answer = requests.get(sys.argv[1], auth=("guest", "guest"), timeout=600)
answer.raise_for_status()
print(len(answer.json()))
"""


def amqp_counts(broker: LocalBroker, vhost: str, queues: list[str]) -> dict[str, tuple[int, int]]:
    """(ready, consumers) of each queue from AMQP: no statistics lag."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_for(vhost)))
    channel = connection.channel()
    counts = {}
    for name in queues:
        method = channel.queue_declare(name, passive=True).method
        counts[name] = (method.message_count, method.consumer_count)
    connection.close()
    return counts


def by_queue(rows) -> dict[str, tuple[int, int]]:
    return {row["queue"]: (row["ready"], row["consumers"]) for row in rows}


def measure(broker: LocalBroker, vhost: str, tenants: int, repeat: int) -> dict:
    history = broker.base_dir / f"{vhost}-history.sqlite"
    settings = load_settings(
        history_db=history,
        management_url=broker.management_url,
        metrics_url=broker.metrics_url,
        vhost=vhost,
        tenant_exchange=EXCHANGE,
        request_timeout=120,
        topology_seconds=3600,
    )
    env = os.environ | {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_METRICS_URL": broker.metrics_url,
        "WARREN_VHOST": vhost,
        "WARREN_TENANT_EXCHANGE": EXCHANGE,
        "WARREN_REQUEST_TIMEOUT": "120",
        "WARREN_HISTORY_DB": str(history),
        "WARREN_AUDIT_DB": str(broker.base_dir / f"{vhost}-audit.sqlite"),
    }
    command = [sys.executable, "-m", "dashboard", "tenants", "--json"]

    kept = kept_topologies(settings)

    def one_shot() -> list[dict]:
        run = subprocess.run(command, env=env, check=True, capture_output=True)
        return json.loads(run.stdout)

    def cold_one_shot() -> list[dict]:
        kept.drop(vhost)  # a few milliseconds, counted against the one-shot
        return one_shot()

    with Session(settings) as session:
        reader = OverviewReader(session)
        first = reader.read()
        warm = reader.read()
        listed = fetch_overview(session)
        rows = [[row.record() for row in view.rows] for view in (first, warm, listed)]
        exact = amqp_counts(broker, vhost, sorted(by_queue(rows[0])))
        for way in [*rows, cold_one_shot(), one_shot()]:
            assert len(way) == tenants and by_queue(way) == exact, "counts differ from AMQP"
        refresh = timed(reader.read, repeat)
        first_read = timed(lambda: OverviewReader(session).read(), repeat)
        with_statistics = timed(lambda: fetch_overview(session), repeat)
        http = session.client.session
        naive = timed(lambda: naive_refresh(http, broker.management_url, vhost), repeat)
    naive_command = [
        sys.executable, "-c", NAIVE_PROCESS, f"{broker.management_url}{api_path('queues', vhost)}"
    ]  # fmt: skip
    # The two processes take turns: the broker's own load drifts over a run (it emits
    # statistics for every queue), and a turn each meets the same drift.
    cold, warm, naive_process = timed_in_turn(
        cold_one_shot,
        one_shot,
        lambda: subprocess.run(naive_command, check=True, capture_output=True),
        repeat=max(3, repeat),
    )
    return {
        "tenants": tenants, "refresh": refresh, "first": first_read,
        "statistics": with_statistics, "naive": naive, "cold": cold, "warm": warm,
        "naive_process": naive_process,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    tune_garbage_collector()  # as the console's process and the CLI do
    started = time.perf_counter()
    with LocalBroker.create() as broker:
        print(f"broker started in {time.perf_counter() - started:.1f} s", flush=True)
        results = []
        for size in args.sizes:
            vhost = f"bench-{size}"
            built = time.perf_counter()
            build_vhost(broker, vhost, size)
            print(f"built {size} tenant queues in {time.perf_counter() - built:.1f} s", flush=True)
            time.sleep(6)  # the first stats emission, so that every way counts every message
            results.append(measure(broker, vhost, size, args.repeat))
            print(f"measured {size}", flush=True)
    print(
        f"\n{'tenants':>8} {'refresh':>10} {'first read':>10} {'statistics':>10} {'naive':>10}"
        f" {'naive/refresh':>14}"
    )
    for row in results:
        print(
            f"{row['tenants']:>8,} {ms(row['refresh'])} {ms(row['first'])}"
            f" {ms(row['statistics'])} {ms(row['naive'])} {row['naive'] / row['refresh']:>13.1f}x"
        )
    print(
        f"\n{'tenants':>8} {'one-shot cold':>14} {'one-shot warm':>14} {'naive process':>14}"
        f" {'naive/cold':>11} {'naive/warm':>11}"
    )
    for row in results:
        naive = row["naive_process"]
        print(
            f"{row['tenants']:>8,} {ms(row['cold']):>14} {ms(row['warm']):>14} {ms(naive):>14}"
            f" {naive / row['cold']:>10.1f}x {naive / row['warm']:>10.1f}x"
        )
    sizes = {row["tenants"]: row for row in results}
    if 1000 in sizes and 10000 in sizes:
        small, large = sizes[1000], sizes[10000]
        grows = ", ".join(
            f"{name} {large[key] / small[key]:.1f}x"
            for name, key in (("refresh", "refresh"), ("first read", "first"),
                              ("one-shot cold", "cold"), ("one-shot warm", "warm"),
                              ("naive", "naive"))
        )  # fmt: skip
        print(f"\n10x the tenants (1,000 -> 10,000) costs: {grows}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:>8.1f}ms"


if __name__ == "__main__":
    main()
