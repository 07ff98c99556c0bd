"""How long one tenant-overview refresh takes at 20, 1,000 and 10,000 tenant queues.

Builds its own disposable broker with one vhost per size (built once per run, via
`POST /api/definitions`), then times, side by side in the same run:
  - the console's refresh: counts from the broker's Prometheus endpoint laid over the topology
    it keeps (what every poll does between topology listings);
  - the topology listing: bindings of the tenant exchange + only the queue columns shown (what
    a poll does every WARREN_TOPOLOGY_SECONDS, and what the one-shot CLI does);
  - the naive baseline: every field of every queue plus every binding of the vhost;
  - the CLI, `warren tenants --json`, as a whole process.
Counts are checked equal between the two ways before timing.
Run: .venv/bin/python bench/overview_refresh.py [--sizes 20 1000 10000] [--repeat 10]
"""

import argparse
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
from dashboard.reads.overview import OverviewReader, fetch_overview
from dashboard.settings import load_settings

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


def naive_refresh(session: requests.Session, base: str, vhost: str) -> int:
    queues = session.get(f"{base}{api_path('queues', vhost)}").content
    bindings = session.get(f"{base}{api_path('bindings', vhost)}").content
    return len(queues) + len(bindings)


def measure(broker: LocalBroker, vhost: str, tenants: int, repeat: int) -> dict:
    settings = load_settings(
        management_url=broker.management_url,
        metrics_url=broker.metrics_url,
        vhost=vhost,
        tenant_exchange=EXCHANGE,
        request_timeout=120,
        topology_seconds=3600,
    )
    with Session(settings) as session:
        listed = fetch_overview(session)
        assert listed.totals.tenants == tenants, listed.totals
        reader = OverviewReader(session)
        reader.read()
        counted = reader.read()
        assert counted.counts_from == "metrics"
        assert counted.totals == listed.totals, (counted.totals, listed.totals)
        refresh = timed(reader.read, repeat)
        topology = timed(lambda: fetch_overview(session), repeat)
        http = session.client.session
        naive = timed(lambda: naive_refresh(http, broker.management_url, vhost), repeat)
    env = os.environ | {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_VHOST": vhost,
        "WARREN_TENANT_EXCHANGE": EXCHANGE,
        "WARREN_REQUEST_TIMEOUT": "120",
    }
    command = [sys.executable, "-m", "dashboard", "tenants", "--json"]
    cli = timed(lambda: subprocess.run(command, env=env, check=True, capture_output=True), 3)
    return {
        "tenants": tenants, "refresh": refresh, "topology": topology, "naive": naive, "cli": cli
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()
    with LocalBroker.create() as broker:
        print(f"broker started in {time.perf_counter() - started:.1f} s", flush=True)
        results = []
        for size in args.sizes:
            vhost = f"bench-{size}"
            built = time.perf_counter()
            build_vhost(broker, vhost, size)
            print(f"built {size} tenant queues in {time.perf_counter() - built:.1f} s", flush=True)
            time.sleep(6)  # the first stats emission, so that both ways count every message
            results.append(measure(broker, vhost, size, args.repeat))
    print(
        f"\n{'tenants':>8} {'refresh':>10} {'topology':>10} {'naive':>10} {'naive/refresh':>14}"
        f" {'naive/topology':>15} {'cli process':>12}"
    )
    for row in results:
        print(
            f"{row['tenants']:>8,} {ms(row['refresh'])} {ms(row['topology'])} {ms(row['naive'])}"
            f" {row['naive'] / row['refresh']:>13.1f}x {row['naive'] / row['topology']:>14.1f}x"
            f" {row['cli'] * 1000:>10.0f}ms"
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:>8.1f}ms"


if __name__ == "__main__":
    main()
