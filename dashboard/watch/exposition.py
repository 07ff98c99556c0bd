"""The watcher's findings and counts in Prometheus' text format, rendered once per poll.

The metric names and labels are an interface alerts and boards are built on: extend, don't
rename. A flag is a series of value 1 while it holds, gone when it clears. Its reason changes
with every poll, so it is no label of the flag (that would end the alert and start another):
`*_reason` series carry it, with the console link, for the rules' annotations to look up.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from dashboard.reads.models import Overview
from dashboard.watch.findings import Finding

TENANT_LABELS = ["vhost", "tenant", "queue"]
# Per finding scope: the flag's metric, and its labels but `kind`.
FLAG_SERIES = {
    "tenant": ("warren_tenant_flag", TENANT_LABELS),
    "consumer": ("warren_consumer_flag", ["vhost", "pod", "queue"]),
    "node": ("warren_node_alarm", ["node"]),
}

# Per tenant queue: the series' name and help, and its value for a row (None: no series).
TENANT_SERIES = (
    ("warren_tenant_ready_messages", "Ready messages in the tenant's queue.", lambda r: r.ready),
    (
        "warren_tenant_unacked_messages",
        "Messages delivered from the tenant's queue and not yet acked.",
        lambda row: row.unacked,
    ),
    ("warren_tenant_consumers", "Consumers on the tenant's queue.", lambda row: row.consumers),
    (
        "warren_tenant_dead_letter_messages",
        "Messages in the tenant's dead-letter queue (no series without one).",
        lambda row: row.dead_letters,
    ),
    (
        "warren_tenant_wait_seconds",
        "How long the tenant's ready work has waited: the oldest ready message's age where "
        "producers timestamp messages, else how long the queue has had ready messages (no "
        "series without ready messages).",
        lambda row: row.wait and row.wait.seconds,
    ),
    (
        "warren_tenant_drain_seconds",
        "The ready messages over the current ack rate (no series while nothing is acked).",
        lambda row: row.wait and row.wait.drain_seconds,
    ),
)


@dataclass(frozen=True)
class Reading:
    """What one round of polls left: the latest good overview of each vhost watched, every
    finding, and whether the broker answered the latest polls."""

    overviews: list[Overview]
    findings: list[Finding]
    broker_up: bool
    last_success: datetime | None
    console_url: str
    polls: int = 0


def render(reading: Reading) -> bytes:
    return generate_latest(_Families(reading))


class _Families:
    """What `generate_latest` asks of a registry: the families, freshly built."""

    def __init__(self, reading: Reading):
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        reading = self.reading
        yield from _tenant_counts(reading.overviews)
        yield from _unrouted(reading.overviews)
        for scope in FLAG_SERIES:
            yield from _flags(scope, [f for f in reading.findings if f.scope == scope])
        console = GaugeMetricFamily(
            "warren_console_info", "The console the alerts link to.", labels=["url"]
        )
        console.add_metric([reading.console_url], 1)
        yield console
        yield CounterMetricFamily(
            "warren_watch_polls", "Rounds of polls the watcher made.", value=reading.polls
        )
        up = GaugeMetricFamily(
            "warren_broker_up", "1 when the latest poll of the broker succeeded, else 0."
        )
        up.add_metric([], 1 if reading.broker_up else 0)
        yield up
        if reading.last_success is not None:
            yield GaugeMetricFamily(
                "warren_last_success_timestamp_seconds",
                "When a poll of the broker last succeeded (Unix time).",
                value=reading.last_success.timestamp(),
            )


def _tenant_counts(overviews: list[Overview]) -> Iterator[Metric]:
    families = [
        (GaugeMetricFamily(name, text, labels=TENANT_LABELS), value_of)
        for name, text, value_of in TENANT_SERIES
    ]
    seen = set()
    for row in (row for overview in overviews for row in overview.rows):
        labels = [row.vhost, row.tenant, row.queue]
        if tuple(labels) in seen:
            continue
        seen.add(tuple(labels))
        for family, value_of in families:
            value = value_of(row)
            if value is not None:
                family.add_metric(labels, value)
    yield from (family for family, _ in families)


def _unrouted(overviews: list[Overview]) -> Iterator[Metric]:
    dropped = GaugeMetricFamily(
        "warren_exchange_unroutable_dropped_messages",
        "Messages the tenant exchange dropped for want of a binding, since the broker's "
        "statistics began (a tenant publishing before it was onboarded).",
        labels=["vhost", "exchange"],
    )
    captured = GaugeMetricFamily(
        "warren_exchange_captured_messages",
        "Messages in the tenant exchange's capture queue (no series without one).",
        labels=["vhost", "exchange"],
    )
    for overview in overviews:
        unrouted = overview.unrouted
        if unrouted is None:
            continue
        labels = [overview.vhost, unrouted.exchange]
        dropped.add_metric(labels, unrouted.dropped)
        if unrouted.captured is not None:
            captured.add_metric(labels, unrouted.captured)
    yield dropped
    yield captured


def _flags(scope: str, findings: list[Finding]) -> Iterator[Metric]:
    name, labels = FLAG_SERIES[scope]
    flag = GaugeMetricFamily(
        name, f"1 while the {scope}'s flag of this kind holds.", labels=[*labels, "kind"]
    )
    reason = GaugeMetricFamily(
        f"{name}_reason",
        f"The one-line reason of each {scope} flag, and the console link that opens on it.",
        labels=[*labels, "kind", "reason", "link"],
    )
    for finding in findings:
        values = [finding.labels[label] for label in labels]
        flag.add_metric([*values, finding.kind], 1)
        reason.add_metric([*values, finding.kind, finding.reason, finding.link], 1)
    yield flag
    yield reason
