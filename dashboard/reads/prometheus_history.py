"""Ready and unacked over time from Prometheus, when WARREN_PROMETHEUS_URL names a server that
scrapes RabbitMQ's Prometheus plugin (`/metrics/detailed?family=queue_coarse_metrics`)."""

import time

import requests

from dashboard.errors import BrokerUnreachable, ServerError
from dashboard.reads.history import Sample

READY = "rabbitmq_detailed_queue_messages_ready"
UNACKED = "rabbitmq_detailed_queue_messages_unacked"
# Prometheus answers at most 11,000 points per series.
MAX_POINTS = 10_000


def label_value(text: str) -> str:
    """`text` as a PromQL string literal: backslash, quote and newline escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class PrometheusHistory:
    """The same questions as the local history, asked of Prometheus with range queries."""

    def __init__(self, url: str, timeout: float):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def series(self, vhost: str, queue: str, since: float, step: float = 15) -> list[Sample]:
        now = time.time()
        step = max(step, (now - since) / MAX_POINTS)
        selector = f"{{vhost={label_value(vhost)},queue={label_value(queue)}}}"
        # One series per queue, whichever node or scrape target reported it.
        ready = self._range(f"max by (vhost, queue) ({READY}{selector})", since, now, step)
        unacked = self._range(f"max by (vhost, queue) ({UNACKED}{selector})", since, now, step)
        return [
            Sample(at=at, ready=count, unacked=unacked[at], acks=None, dead_letters=None)
            for at, count in sorted(ready.items())
            if at in unacked
        ]

    def _range(self, query: str, start: float, end: float, step: float) -> dict[float, int]:
        try:
            answer = self.session.get(
                f"{self.url}/api/v1/query_range",
                params={"query": query, "start": start, "end": end, "step": step},
                timeout=self.timeout,
            )
        except requests.RequestException:
            raise BrokerUnreachable(f"Cannot reach Prometheus at {self.url}.") from None
        try:
            body = answer.json()
            if not isinstance(body, dict) or body.get("status") != "success":
                raise ValueError(
                    body.get("error", "no success") if isinstance(body, dict) else body
                )
            results = body["data"]["result"]
            values = results[0]["values"] if results else []
            return {float(at): int(float(value)) for at, value in values}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ServerError(
                f"Prometheus at {self.url} did not answer the range query for {query}: {exc}."
            ) from None
