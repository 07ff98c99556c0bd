"""The watcher: the console's three polls (tenants and consumers of each vhost watched, the
nodes once) run by one loop on the console's interval whether or not anyone looks, the
overviews recorded in the history store the console reads, and after each round the metrics
rendered and the webhook told what changed.

`/metrics` serves the text of the latest round (a scrape costs no broker request and no
rendering), `/healthz` says whether the loop keeps its interval.
"""

import gzip
import logging
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from dashboard.broker.session import Session
from dashboard.reads.history import History
from dashboard.reads.poll import SharedPoll, cluster_poll, consumers_poll, overview_poll
from dashboard.watch.exposition import Reading, render
from dashboard.watch.findings import findings_of
from dashboard.watch.webhook import Webhook

log = logging.getLogger(__name__)
# The broker alert of the webhook path waits this long, like the rule's `for` (a restart of the
# broker's node is not a page).
BROKER_DOWN_AFTER = 120


class Watcher:
    """Watches the vhost of each session (the first one's settings rule the loop: interval,
    console link, WARREN_VHOST for the links)."""

    def __init__(self, sessions: list[Session], history: History | None, webhook: Webhook | None):
        self.session = sessions[0]
        self.webhook = webhook
        self.interval = self.session.settings.refresh_seconds
        self.vhost_polls: list[tuple[SharedPoll, SharedPoll]] = [
            (overview_poll(session, history), consumers_poll(session)) for session in sessions
        ]
        self.cluster = cluster_poll(self.session)
        self.rounds = 0
        self._round_at = time.monotonic()
        self._text = render(Reading([], [], False, None, self.session.settings.console_url))
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def poll_once(self) -> Reading:
        """One round: every poll, then the metrics and the webhook."""
        settings = self.session.settings
        snapshots = [(tenants.refresh(), pods.refresh()) for tenants, pods in self.vhost_polls]
        cluster = self.cluster.refresh()
        findings = findings_of(None, None, cluster.data, settings.console_url)
        for overview, consumers in snapshots:
            findings += findings_of(
                overview.data, consumers.data, None, settings.console_url, settings.vhost
            )
        overviews = [overview for overview, _ in snapshots]
        successes = [overview.fetched_at for overview in overviews]
        reading = Reading(
            [overview.data for overview in overviews if overview.data is not None],
            findings,
            not any(overview.stale for overview in overviews),
            None if None in successes else min(successes),
            settings.console_url,
            polls=self.rounds + 1,
        )
        text = render(reading)
        with self._lock:
            self._text, self._gzipped = text, None
        if self.webhook is not None:
            down = next((overview for overview in overviews if overview.stale), overviews[0])
            self.webhook.update(findings, _broker_down(down.error, down.failing_since))
        self.rounds += 1
        self._round_at = time.monotonic()
        return reading

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.poll_once()
            stop.wait(max(0.0, started + self.interval - time.monotonic()))

    def metrics(self, gzipped: bool) -> bytes:
        with self._lock:
            if not gzipped:
                return self._text
            if self._gzipped is None:
                self._gzipped = gzip.compress(self._text, compresslevel=1)
            return self._gzipped

    def healthy(self) -> bool:
        """The loop went round within three intervals (a slow broker still counts: a poll
        waits at most its request timeout)."""
        allowed = 3 * self.interval + 3 * self.session.settings.request_timeout
        return time.monotonic() - self._round_at <= allowed


def _broker_down(error, since: datetime | None) -> str | None:
    if error is None or since is None:
        return None
    if (datetime.now(UTC) - since).total_seconds() < BROKER_DOWN_AFTER:
        return None
    return f"Warren cannot read the broker since {since:%H:%M:%S} UTC: {error}"


def serve(watcher: Watcher, address: str, port: int) -> ThreadingHTTPServer:
    """/metrics and /healthz on address:port, from a thread of their own."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
                body = watcher.metrics(gzipped)
                headers = {"Content-Type": CONTENT_TYPE_LATEST}
                if gzipped:
                    headers["Content-Encoding"] = "gzip"
                self._answer(200, body, headers)
            elif path == "/healthz":
                ok = watcher.healthy()
                self._answer(200 if ok else 503, b"ok\n" if ok else b"the poll loop is late\n")
            else:
                self._answer(404, b"/metrics or /healthz\n")

        def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {"Content-Type": "text/plain"}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="warren-metrics").start()
    return server
