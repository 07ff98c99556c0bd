"""How long after its cause each finding of issue 18 reaches someone who is not looking: the
`warren watch` process's /metrics, which the shipped alert rules read.

Stages every scenario at once on a disposable broker, each on a tenant of its own, with short
windows (below), then scrapes the watcher every 0.2 s and prints, per finding, the seconds from
its cause to its first series, beside the rule's own threshold and the poll interval: the
baseline is what the rule must wait by definition; the rest is Warren's (polls, the broker's
statistics interval, which is 1 s on this disposable node and 5 s by default).
Run: .venv/bin/python bench/findings.py
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pika
import requests

from dashboard.local.rabbitmq import LocalBroker, free_port
from dashboard.local.workload import declare_tenant

EXCHANGE = "tenants"
REFRESH, STUCK, TIMEOUT, BACKLOG_WINDOW = 2, 10, 15, 30
ENV = {
    "WARREN_TENANT_EXCHANGE": EXCHANGE,
    "WARREN_REFRESH_SECONDS": str(REFRESH),
    "WARREN_TOPOLOGY_SECONDS": "5",
    "WARREN_STUCK_AFTER_SECONDS": str(STUCK),
    "WARREN_CONSUMER_TIMEOUT_SECONDS": str(TIMEOUT),
    "WARREN_REDELIVERY_WINDOW_SECONDS": "60",
    "WARREN_BACKLOG_WINDOW_SECONDS": str(BACKLOG_WINDOW),
}


DONE = threading.Event()
PRODUCER: list[threading.Thread] = []
# The pods' connections, kept open until the run ends.
PODS: list[pika.BlockingConnection] = []


def pod(broker: LocalBroker, name: str) -> pika.BlockingConnection:
    parameters = pika.URLParameters(f"{broker.amqp_url}?heartbeat=0")
    parameters.client_properties = {"connection_name": name}
    PODS.append(pika.BlockingConnection(parameters))
    return PODS[-1]


def hold(connection: pika.BlockingConnection, queue: str, prefetch: int, expect: int) -> None:
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    taken = []
    channel.basic_consume(queue, lambda *delivery: taken.append(delivery))
    deadline = time.monotonic() + 10
    while len(taken) < expect and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.1)


def send(channel, key: str, count: int = 1, **properties) -> None:
    for _ in range(count):
        channel.basic_publish(EXCHANGE, key, b"job", pika.BasicProperties(**properties))


def series(url: str) -> list[str]:
    return [line for line in requests.get(url, timeout=10).text.splitlines() if line[:1] != "#"]


def main() -> None:
    scratch = tempfile.mkdtemp(prefix="warren-findings-")
    with LocalBroker.create() as broker:
        admin = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = admin.channel()
        tenants = ("orphan", "held", "fair", "looping", "growing", "stamped")
        queues = {tenant: declare_tenant(channel, EXCHANGE, tenant) for tenant in tenants}
        send(channel, "looping", 2)
        port = free_port()
        env = os.environ | ENV | {
            "WARREN_MANAGEMENT_URL": broker.management_url,
            "WARREN_AMQP_URL": broker.amqp_url,
            "WARREN_METRICS_URL": broker.metrics_url,
            "WARREN_HISTORY_DB": str(Path(scratch) / "history.sqlite"),
            "WARREN_AUDIT_DB": str(Path(scratch) / "audit.sqlite"),
        }  # fmt: skip
        watcher = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "watch", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            while not any('tenant="looping"' in line for line in _try(series, url)):
                time.sleep(0.2)
            causes = stage(broker, channel, queues)
            appeared = watch(url, causes)
        finally:
            DONE.set()
            for producer in PRODUCER:
                producer.join(timeout=10)
            watcher.terminate()
            watcher.wait(timeout=30)
    report(causes, appeared)


def _try(read, url):
    try:
        return read(url)
    except requests.RequestException:
        return []


# Per finding: what its series line holds, its threshold (what the rule waits by definition).
FINDINGS = {
    "no-consumer": (("warren_tenant_flag{", 'tenant="orphan"', 'kind="no-consumer"'), 0),
    "stuck": (("warren_consumer_flag{", 'pod="pod-held"', 'kind="stuck"'), STUCK),
    "near-consumer-timeout": (
        ("warren_consumer_flag{", 'pod="pod-held"', 'kind="near-consumer-timeout"'),
        0.8 * TIMEOUT,
    ),
    "waiting-behind-job": (
        ("warren_consumer_flag{", 'pod="pod-busy"', 'kind="waiting-behind-job"'),
        0,
    ),
    "redelivery-loop": (("warren_tenant_flag{", 'tenant="looping"', 'kind="redelivery-loop"'), 0),
    "backlog-growing": (
        ("warren_tenant_flag{", 'tenant="growing"', 'kind="backlog-growing"'),
        BACKLOG_WINDOW / 2,
    ),
    "wait (oldest message)": (("warren_tenant_wait_seconds{", 'tenant="stamped"'), 0),
    "unroutable dropped": (("warren_exchange_unroutable_dropped_messages{", "} 1.0"), 0),
}


def stage(broker: LocalBroker, channel, queues: dict[str, str]) -> dict[str, float]:
    causes = {}
    send(channel, "orphan", 3)
    causes["no-consumer"] = time.time()
    send(channel, "held", 1)
    hold(pod(broker, "pod-held"), queues["held"], 1, 1)
    causes["stuck"] = causes["near-consumer-timeout"] = time.time()
    send(channel, "fair", 2)
    hold(pod(broker, "pod-busy"), queues["fair"], 2, 2)
    hold(pod(broker, "pod-free"), queues["fair"], 2, 0)
    causes["waiting-behind-job"] = time.time()
    causes["redelivery-loop"] = time.time()
    for life in range(3):  # pods that die on the jobs they take
        dying = pod(broker, f"pod-dies-{life}")
        hold(dying, queues["looping"], 2, 2)
        dying.close()
    send(channel, "stamped", 1, timestamp=int(time.time()))
    causes["wait (oldest message)"] = time.time()
    channel.basic_publish(EXCHANGE, "not-onboarded", b"job")
    causes["unroutable dropped"] = time.time()
    hold(pod(broker, "pod-slow"), queues["growing"], 1, 0)
    causes["backlog-growing"] = time.time()
    PRODUCER.append(threading.Thread(target=produce, args=(broker, "growing")))
    PRODUCER[0].start()
    return causes


def produce(broker: LocalBroker, tenant: str) -> None:
    """A message every 2 s until the run ends: more work than the pod takes."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    producer = connection.channel()
    while not DONE.is_set():
        send(producer, tenant)
        connection.sleep(2)
    connection.close()


def watch(url: str, causes: dict[str, float], limit: float = 120) -> dict[str, float]:
    appeared: dict[str, float] = {}
    deadline = time.time() + limit
    while len(appeared) < len(FINDINGS) and time.time() < deadline:
        lines = _try(series, url)
        for finding, (needle, _) in FINDINGS.items():
            seen = any(all(part in line for part in needle) for line in lines)
            if finding not in appeared and seen:
                appeared[finding] = time.time()
        time.sleep(0.2)
    return appeared


def report(causes: dict[str, float], appeared: dict[str, float]) -> None:
    print(f"poll every {REFRESH} s; broker statistics every 1 s (5 s by default)")
    print(f"{'finding':24} {'after cause':>12} {'threshold':>10} {'beyond it':>10} {'polls':>6}")
    for finding, (_, threshold) in FINDINGS.items():
        if finding not in appeared:
            print(f"{finding:24} {'not seen':>12}")
            continue
        after = appeared[finding] - causes[finding]
        beyond = after - threshold
        print(
            f"{finding:24} {after:>10.1f} s {threshold:>8.0f} s {beyond:>8.1f} s "
            f"{beyond / REFRESH:>6.1f}"
        )


if __name__ == "__main__":
    main()
