"""How many broker polls twenty browser viewers cause, against one viewer, in the same run.

Builds its own broker with 20 tenant queues and serves the console through a counting proxy
in front of the management API and of the broker's metrics endpoint. Opens the overview in one
Chromium page (Debian's, driven by Playwright), then in twenty, and over the same span counts
the requests that read counts: each poll makes one (the metrics endpoint, or the queue list
when it lists the topology). Prints both counts and the polls per refresh interval.
Run: .venv/bin/python bench/viewers.py [--viewers 20] [--seconds 40]
"""

import argparse
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from console import serve_console, stop_console
from overview_refresh import build_vhost
from playwright.sync_api import sync_playwright

from dashboard.local.rabbitmq import LocalBroker, free_port

REFRESH_SECONDS = 5
COUNT_READS = ("/metrics/detailed", "/api/queues/")


class CountingProxy:
    """Forwards GETs to `target` and counts them by path."""

    def __init__(self, target: str):
        self.seen: Counter[str] = Counter()
        session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.seen[self.path.split("?")[0]] += 1
                answer = session.get(
                    target + self.path, headers={"Authorization": self.headers["Authorization"]}
                    if self.headers["Authorization"] else {}, timeout=60,
                )  # fmt: skip
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count_reads(self) -> int:
        return sum(n for path, n in self.seen.items() if path.startswith(COUNT_READS))


def count_polls(browser, url: str, proxies, viewers: int, seconds: float) -> int:
    pages = []
    for _ in range(viewers):
        page = browser.new_page()
        page.goto(url, timeout=120_000)
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=120_000)
        pages.append(page)
    before = sum(proxy.count_reads() for proxy in proxies)
    time.sleep(seconds)
    polls = sum(proxy.count_reads() for proxy in proxies) - before
    for page in pages:
        page.close()
    return polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    with LocalBroker.create() as broker:
        build_vhost(broker, "viewers", 20)
        proxies = [CountingProxy(broker.management_url), CountingProxy(broker.metrics_url)]
        port = free_port()
        console = serve_console(
            port, management_url=proxies[0].url, metrics_url=proxies[1].url,
            amqp_url=broker.amqp_url_for("viewers"), vhost="viewers", tenant_exchange="tenants",
            refresh_seconds=str(REFRESH_SECONDS),
            history_db=str(broker.base_dir / "history.sqlite"),
        )  # fmt: skip
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                url = f"http://127.0.0.1:{port}/"
                one = count_polls(browser, url, proxies, 1, args.seconds)
                many = count_polls(browser, url, proxies, args.viewers, args.seconds)
                browser.close()
        finally:
            stop_console(console)
    intervals = args.seconds / REFRESH_SECONDS
    print(f"{intervals:.0f} refresh intervals of {REFRESH_SECONDS} s each")
    print(f"1 viewer:   {one} polls ({one / intervals:.2f} per interval)")
    print(f"{args.viewers} viewers: {many} polls ({many / intervals:.2f} per interval)")
    print(f"{args.viewers} viewers / 1 viewer: {many / max(one, 1):.2f}x")


if __name__ == "__main__":
    main()
