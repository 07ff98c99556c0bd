"""A tenant queue's ready and unacked counts over a window, from the best source for its length:
the broker's own samples for the last 10 minutes, then Prometheus when one is configured, else
Warren's local history. Each series says where it came from and leaves gaps as gaps."""

import sqlite3
import time
from dataclasses import dataclass

from dashboard.errors import WarrenError
from dashboard.reads.history import History, Point, with_gaps
from dashboard.reads.prometheus_history import PrometheusHistory
from dashboard.reads.queue_detail import CountSample
from dashboard.settings import Settings

# The broker keeps per-queue samples this far back (its `basic` retention policy).
BROKER_SECONDS = 600
# Prometheus answers every 15 s at best; longer windows get at most this many points.
PROMETHEUS_POINTS = 500


class HistoryUnavailable(WarrenError):
    """No source can give this window."""


@dataclass(frozen=True)
class Series:
    points: list[Point]
    # Where the points come from, for the caption under the chart.
    source: str


class CountsOverTime:
    def __init__(self, settings: Settings, history: History | None):
        self.refresh_seconds = settings.refresh_seconds
        self.history = history
        self.prometheus = (
            PrometheusHistory(settings.prometheus_url, settings.request_timeout)
            if settings.prometheus_url
            else None
        )

    def series(
        self, vhost: str, queue: str, seconds: int, broker_samples: list[CountSample]
    ) -> Series:
        """The last `seconds` of `queue`; `broker_samples` are the broker's own (the queue
        detail has them)."""
        if seconds <= BROKER_SECONDS:
            points = [Point(s.at.timestamp(), s.ready, s.unacked) for s in broker_samples]
            return Series(points, "the broker's own samples")
        since = time.time() - seconds
        if self.prometheus is not None:
            step = max(15.0, seconds / PROMETHEUS_POINTS)
            samples = self.prometheus.series(vhost, queue, since, step)
            return Series(with_gaps(samples, 3 * step), f"Prometheus, one point every {step:g} s")
        return Series(
            with_gaps(self._local(vhost, queue, since), 3 * self.refresh_seconds),
            f"Warren's history, one sample per poll ({self.refresh_seconds:g} s)",
        )

    def _local(self, vhost: str, queue: str, since: float):
        if self.history is None:
            raise HistoryUnavailable(
                "No local history: the history file cannot be opened (see WARREN_HISTORY_DB)."
            )
        try:
            return self.history.series(vhost, queue, since)
        except sqlite3.Error as exc:
            raise HistoryUnavailable(
                f"The local history at {self.history.path} cannot be read: {exc}."
            ) from None
