"""`warren watch --webhook URL`: the alerts the shipped rules would raise, posted straight to a
receiver for teams without Alertmanager, in Alertmanager's webhook format (version 4), so one
receiver serves both paths.

One post per change: a finding that appears is `firing`, one that clears is `resolved`. Posts
leave from a thread of their own, in order, retried with backoff while the receiver fails, so
a slow or broken receiver never holds up a poll. What is posted is the finding (names, counts,
the reason, the console link): never a credential.
"""

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import requests

from dashboard.watch.findings import BROKER_UNREACHABLE, Finding

log = logging.getLogger(__name__)
NEVER = "0001-01-01T00:00:00Z"
# Retries wait 1, 2, 4 ... up to this many seconds between attempts.
MOST_BACKOFF = 60
# A post still failing after this long is dropped (logged): the receiver missed that change.
GIVE_UP_AFTER = 3600
# Changes waiting while the receiver is down; beyond this the oldest are dropped (logged).
MOST_WAITING = 10_000


class Alert:
    """One alert as the rules would raise it: its labels are its identity."""

    def __init__(self, name: str, labels: dict[str, str], summary: str, link: str):
        self.labels = {"alertname": name, **labels}
        self.summary = summary
        self.link = link
        self.starts_at = datetime.now(UTC)

    @classmethod
    def of(cls, finding: Finding) -> "Alert":
        labels = {**finding.labels, "kind": finding.kind, "severity": finding.severity}
        return cls(finding.alertname, labels, finding.reason, finding.link)

    @property
    def key(self) -> tuple:
        return tuple(sorted(self.labels.items()))

    def payload(self, status: str, external_url: str) -> dict:
        ends_at = datetime.now(UTC).isoformat() if status == "resolved" else NEVER
        alert = {
            "status": status,
            "labels": self.labels,
            "annotations": {"summary": self.summary, "console": self.link},
            "startsAt": self.starts_at.isoformat(),
            "endsAt": ends_at,
            "generatorURL": self.link,
            "fingerprint": hashlib.sha256(repr(self.key).encode()).hexdigest()[:16],
        }
        return {
            "version": "4",
            "groupKey": f"warren-watch:{self.key}",
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "warren-watch",
            "groupLabels": {"alertname": self.labels["alertname"]},
            "commonLabels": self.labels,
            "commonAnnotations": alert["annotations"],
            "externalURL": external_url,
            "alerts": [alert],
        }


class Webhook:
    def __init__(
        self,
        url: str,
        console_url: str,
        timeout: float = 10,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url
        self.console_url = console_url
        self.timeout = timeout
        self._sleep = sleep
        self._firing: dict[tuple, Alert] = {}
        self._waiting: queue.Queue[dict] = queue.Queue()
        self._sender = threading.Thread(target=self._send_all, daemon=True, name="warren-webhook")
        self._sender.start()

    def update(self, findings: list[Finding], broker_down: str | None) -> None:
        """The findings of the latest poll; `broker_down`, the reason while the broker has not
        answered for long enough to page. Posts what changed since the last update."""
        alerts = [Alert.of(finding) for finding in findings]
        if broker_down:
            page = {"severity": "page"}
            alerts.append(Alert(BROKER_UNREACHABLE, page, broker_down, self.console_url))
        now = {alert.key: alert for alert in alerts}
        for key in [key for key in self._firing if key not in now]:
            self._post(self._firing.pop(key).payload("resolved", self.console_url))
        for key, alert in now.items():
            if key not in self._firing:
                self._firing[key] = alert
                self._post(alert.payload("firing", self.console_url))
            else:
                self._firing[key].summary = alert.summary

    def _post(self, payload: dict) -> None:
        if self._waiting.qsize() >= MOST_WAITING:
            dropped = self._waiting.get_nowait()
            log.warning("webhook: receiver behind, dropped %s", _what(dropped))
        self._waiting.put(payload)

    def _send_all(self) -> None:
        while True:
            self._send(self._waiting.get())
            self._waiting.task_done()

    def _send(self, payload: dict) -> None:
        first, wait = time.monotonic(), 1.0
        while True:
            try:
                answer = requests.post(self.url, json=payload, timeout=self.timeout)
                if answer.ok:
                    return
                problem = f"HTTP {answer.status_code}"
            except requests.RequestException as exc:
                problem = type(exc).__name__
            if time.monotonic() - first > GIVE_UP_AFTER:
                log.error("webhook: gave up on %s after %s", _what(payload), problem)
                return
            log.warning("webhook: %s for %s, again in %g s", problem, _what(payload), wait)
            self._sleep(wait)
            wait = min(wait * 2, MOST_BACKOFF)

    def flush(self, seconds: float) -> None:
        """Waits up to `seconds` for the posts still waiting (a clean stop)."""
        deadline = time.monotonic() + seconds
        while self._waiting.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)


def _what(payload: dict) -> str:
    return f"{payload['status']} {payload['groupLabels']['alertname']}"
