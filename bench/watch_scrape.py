"""`warren watch` at scale: one scrape of /metrics at 10,000 tenant queues, and the watcher's
memory over a few hundred polls.

Builds a disposable broker with one vhost of N tenant queues (as overview_refresh.py does),
runs `warren watch` on it as a process, and measures side by side in the same run:
  - a scrape of the watcher's /metrics (plain and gzip): the text rendered once per poll;
  - the baseline a scrape-time collector pays: rendering that text from the latest overview
    (in this process, from the same broker);
  - the broker's own Prometheus scrape of the same queues (queue_coarse_metrics), for scale.
Then the watcher's RSS after its first polls and after --polls polls.
Run: .venv/bin/python bench/watch_scrape.py [--tenants 10000] [--polls 300] [--repeat 20]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from overview_refresh import build_vhost, timed

from dashboard.broker.session import Session
from dashboard.local.rabbitmq import LocalBroker, free_port
from dashboard.reads.overview import OverviewReader
from dashboard.reads.stuck import flag_overview
from dashboard.settings import ENV_PREFIX, load_settings
from dashboard.watch.exposition import Reading, render
from dashboard.watch.findings import findings_of

EXCHANGE = "tenants"
GZIP = {"Accept-Encoding": "gzip"}


def watcher_env(broker: LocalBroker, vhost: str, scratch: str) -> dict[str, str]:
    return {
        "WARREN_MANAGEMENT_URL": broker.management_url,
        "WARREN_AMQP_URL": broker.amqp_url_for(vhost),
        "WARREN_METRICS_URL": broker.metrics_url,
        "WARREN_VHOST": vhost,
        "WARREN_TENANT_EXCHANGE": EXCHANGE,
        "WARREN_REFRESH_SECONDS": "1",
        "WARREN_REQUEST_TIMEOUT": "120",
        "WARREN_HISTORY_DB": str(Path(scratch) / "history.sqlite"),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def polls(url: str) -> int:
    for line in requests.get(url, timeout=30).text.splitlines():
        if line.startswith("warren_watch_polls_total "):
            return int(float(line.split()[1]))
    return 0


def wait_for_polls(url: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while polls(url) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} polls in {timeout:.0f} s")
        time.sleep(1)


def render_seconds(env: dict[str, str], repeat: int) -> float:
    """The baseline: the text rendered from a fresh overview at each scrape."""
    settings = load_settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items()})
    with Session(settings) as session:
        overview = OverviewReader(session).read()
    flag_overview(overview, None, settings)
    findings = findings_of(overview, None, None, settings.console_url)
    reading = Reading([overview], findings, True, overview.fetched_at, settings.console_url)
    return timed(lambda: render(reading), repeat)


def scrapes(broker: LocalBroker, vhost: str, url: str, env: dict, repeat: int) -> None:
    text = requests.get(url, timeout=30).content
    zipped = requests.get(url, headers=GZIP, timeout=30, stream=True).raw.read()
    plain = timed(lambda: requests.get(url, timeout=30).content, repeat)
    gzipped = timed(lambda: requests.get(url, headers=GZIP, timeout=30).content, repeat)
    rendering = render_seconds(env, repeat)
    own = timed(
        lambda: (
            requests.get(
                f"{broker.metrics_url}/metrics/detailed",
                params={"vhost": vhost, "family": "queue_coarse_metrics"},
                timeout=60,
            ).content
        ),
        repeat,
    )
    print(f"/metrics: {len(text) / 1e6:.1f} MB plain, {len(zipped) / 1e6:.2f} MB gzip")
    print(f"scrape (plain)              {plain * 1000:8.1f} ms")
    print(f"scrape (gzip)               {gzipped * 1000:8.1f} ms")
    print(f"rendered per scrape (base)  {rendering * 1000:8.1f} ms  ({rendering / plain:.0f}x)")
    print(f"the broker's own scrape     {own * 1000:8.1f} ms")


def memory(pid: int, url: str, count: int) -> None:
    first, done, began = rss_mb(pid), polls(url), time.monotonic()
    wait_for_polls(url, done + count, 60 * 60)
    each = (time.monotonic() - began) / count
    print(
        f"RSS after {done} polls {first:.0f} MB, after {done + count} polls "
        f"{rss_mb(pid):.0f} MB ({each:.2f} s per poll)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    vhost = f"bench-{args.tenants}"
    with LocalBroker.create() as broker, tempfile.TemporaryDirectory() as scratch:
        build_vhost(broker, vhost, args.tenants)
        time.sleep(6)  # the first stats emission
        env = watcher_env(broker, vhost, scratch)
        port = free_port()
        command = [sys.executable, "-m", "dashboard", "watch", "--port", str(port)]
        watcher = subprocess.Popen(command, env=os.environ | env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            time.sleep(3)
            wait_for_polls(url, 10, 600)
            served = requests.get(url, timeout=30).text.count("warren_tenant_ready_messages{")
            assert served == args.tenants, served
            print(f"{args.tenants:,} tenant queues", flush=True)
            scrapes(broker, vhost, url, env, args.repeat)
            memory(watcher.pid, url, args.polls)
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)


if __name__ == "__main__":
    main()
