"""The console under a large topology, with five browser tabs on it.

Builds its own broker with 5,000 tenant queues, each bound under 10 routing keys, and 5 more
under one key each (50,005 tenant bindings); 2,000 of the 5,000 and one of the 5 hold a message
and have no consumer (20,001 flagged rows). Serves the console on it and, in Debian's Chromium
(driven by Playwright), measures the console process (its CPU from /proc, its resident memory):

- with no tab open (the baseline), then with one tab idle and with five;
- how long each tab takes to show the overview;
- filtering one tab to 10 rows;
- one tab asking for all rows while another tab loads `/`;
- the memory left once every tab has closed and the polls have stopped.

Run: .venv/bin/python bench/large_topology.py [--idle 30]
"""

import argparse
import os
import time
from pathlib import Path

import pika
import requests
from console import serve_console, stop_console
from playwright.sync_api import sync_playwright

from dashboard.broker.management import api_path
from dashboard.local.rabbitmq import LocalBroker, free_port

VHOST = "large"
EXCHANGE = "tenants"
QUEUES, KEYS, SINGLES = 5_000, 10, 5
HELD = 2_000
REFRESH_SECONDS = 5
TICK = os.sysconf("SC_CLK_TCK")


def build(broker: LocalBroker) -> int:
    """The topology; the number of tenant bindings."""
    auth = ("guest", "guest")
    vhost_url = f"{broker.management_url}{api_path('vhosts', VHOST)}"
    requests.put(vhost_url, auth=auth).raise_for_status()
    many = [(f"q.t{number:04d}", [f"t{number:04d}-{key}" for key in range(KEYS)])
            for number in range(QUEUES)]  # fmt: skip
    singles = [(f"q.single{number}", [f"single{number}"]) for number in range(SINGLES)]
    topology = many + singles
    definitions = {
        "exchanges": [{"name": EXCHANGE, "vhost": VHOST, "type": "direct", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {}}],
        "queues": [{"name": queue, "vhost": VHOST, "durable": True, "auto_delete": False,
                    "arguments": {}} for queue, _ in topology],
        "bindings": [{"source": EXCHANGE, "vhost": VHOST, "destination": queue,
                      "destination_type": "queue", "routing_key": key, "arguments": {}}
                     for queue, keys in topology for key in keys],
    }  # fmt: skip
    requests.post(
        broker.management_url + api_path("definitions"), json=definitions, auth=auth, timeout=600
    ).raise_for_status()
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_for(VHOST)))
    channel = connection.channel()
    for queue, _ in many[:HELD] + singles[:1]:
        channel.basic_publish("", queue, b"job")
    connection.close()
    return sum(len(keys) for _, keys in topology)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_share(pid: int, seconds: float) -> float:
    """The console's CPU seconds per second over `seconds` of waiting."""
    started = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - started) / seconds


def open_tab(browser, url: str, bindings: int) -> tuple[object, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    started = time.perf_counter()
    page.goto(url, timeout=180_000)
    page.get_by_text(f"{bindings:,} tenant bindings").first.wait_for(timeout=180_000)
    page.wait_for_selector("[data-testid=stDataFrame] canvas", timeout=180_000)
    return page, time.perf_counter() - started


def timed(action, done) -> float:
    started = time.perf_counter()
    action()
    done()
    return time.perf_counter() - started


class Figures(list):
    """The figures as they come (a phase that hangs shows which it was), and all at the end."""

    def append(self, figure: tuple[str, str]) -> None:
        print(f"{figure[0]:<40} {figure[1]}", flush=True)
        super().append(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=30, help="seconds of each idle measure")
    args = parser.parse_args()
    figures = Figures()
    with LocalBroker.create() as broker, sync_playwright() as playwright:
        bindings = build(broker)
        port = free_port()
        console = serve_console(
            port, management_url=broker.management_url, metrics_url=broker.metrics_url,
            amqp_url=broker.amqp_url_for(VHOST), vhost=VHOST, tenant_exchange=EXCHANGE,
            refresh_seconds=str(REFRESH_SECONDS), request_timeout="120",
            history_db=str(broker.base_dir / "history.sqlite"),
        )  # fmt: skip
        pid = console.pid
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            url = f"http://127.0.0.1:{port}/"
            baseline = cpu_share(pid, args.idle / 3)
            figures.append(("no tab: CPU, memory", f"{baseline:.2f} s/s, {rss_mb(pid):,.0f} MB"))
            first, seconds = open_tab(browser, url, bindings)
            figures.append(("first tab on screen", f"{seconds:.1f} s"))
            one = cpu_share(pid, args.idle)
            figures.append(("1 tab idle: CPU, memory", f"{one:.2f} s/s, {rss_mb(pid):,.0f} MB"))
            tabs = [first]
            for number in range(2, 6):
                page, seconds = open_tab(browser, url, bindings)
                tabs.append(page)
                figures.append((f"tab {number} on screen", f"{seconds:.1f} s"))
            five = cpu_share(pid, args.idle)
            figures.append(("5 tabs idle: CPU, memory", f"{five:.2f} s/s, {rss_mb(pid):,.0f} MB"))
            figures.append(("5 tabs / 1 tab, CPU", f"{five / max(one, 0.01):.2f}x"))
            box = first.get_by_placeholder("part of a tenant id or queue name")
            seconds = timed(
                lambda: (box.fill("t0042-"), box.press("Enter")),
                lambda: first.get_by_text("10 of 10 matching").wait_for(timeout=180_000),
            )
            figures.append(("filter to 10 rows", f"{seconds:.1f} s"))
            everything = tabs[1].get_by_test_id("stButtonGroup").get_by_text("all", exact=True)
            everything.click()
            sixth, seconds = open_tab(browser, url, bindings)
            figures.append(("a 6th tab while a tab shows all rows", f"{seconds:.1f} s"))
            tabs[1].get_by_text(f"of {bindings:,} matching").first.wait_for(timeout=180_000)
            figures.append(("5 + 1 tabs: memory", f"{rss_mb(pid):,.0f} MB"))
            for page in [*tabs, sixth]:
                page.close()
            # Streamlit keeps a closed tab's session for 120 s (server.disconnectedSessionTTL).
            time.sleep(120 + 4 * REFRESH_SECONDS + args.idle)
            left = cpu_share(pid, args.idle / 3)
            closed = f"{left:.2f} s/s, {rss_mb(pid):,.0f} MB"
            figures.append(("every tab closed: CPU, memory", closed))
        finally:
            browser.close()
            stop_console(console)
    print(f"\n{bindings:,} tenant bindings, refresh every {REFRESH_SECONDS} s")
    for name, value in figures:
        print(f"{name:<40} {value}")


if __name__ == "__main__":
    main()
