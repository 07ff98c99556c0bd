"""A tenant queue's ready and unacked counts over a window, from the best source for its length:
Warren's local history for the last 10 minutes (every change its polls saw), Prometheus for longer
windows when one is configured, else the local history; and wherever that source has no sample
in the last 10 minutes (nobody had the console open), the broker's own samples. Each series says
where each part came from and leaves gaps as gaps."""

import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime

from dashboard.database import DatabaseError
from dashboard.errors import WarrenError
from dashboard.reads.history import HEARTBEAT_SECONDS, History, Point, Sample, spaced
from dashboard.reads.prometheus_history import PrometheusHistory
from dashboard.reads.queue_detail import BROKER_SECONDS, BROKER_STEP, CountSample
from dashboard.settings import Settings

# Prometheus answers every 15 s at best; longer windows get at most this many points.
PROMETHEUS_POINTS = 500
# Samples further apart than this many steps of their source have a gap between them.
GAP_STEPS = 3
BROKER_SOURCE = (
    f"the broker's own samples, every {BROKER_STEP} s (its zeros before a queue's first count "
    "are not drawn: the broker pads its window with zeros before it has samples)"
)


class HistoryUnavailable(WarrenError):
    """No source can give this window."""


@dataclass(frozen=True)
class Series:
    points: list[Point]
    # Where the points come from, for the caption under the chart.
    source: str


@dataclass(frozen=True)
class Recorded:
    """A source's samples of the window."""

    samples: list[Sample]
    # Samples further apart than this have a gap between them: nobody was looking.
    reach: float
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
        """The last `seconds` of `queue`; `broker_samples` are the broker's own, without its
        padding (the queue detail has them)."""
        since = time.time() - seconds
        recorded = (
            self._recent(vhost, queue, since)
            if seconds <= BROKER_SECONDS
            else self._longer(vhost, queue, since, seconds)
        )
        return filled(recorded, [s for s in broker_samples if s.at.timestamp() >= since])

    def _recent(self, vhost: str, queue: str, since: float) -> Recorded:
        """The local history when it can be read; else none (the broker's samples fill in)."""
        try:
            return self._local(vhost, queue, since)
        except HistoryUnavailable:
            return Recorded([], GAP_STEPS * self.refresh_seconds, "")

    def _longer(self, vhost: str, queue: str, since: float, seconds: int) -> Recorded:
        if self.prometheus is None:
            return self._local(vhost, queue, since)
        step = max(15.0, seconds / PROMETHEUS_POINTS)
        samples = self.prometheus.series(vhost, queue, since, step)
        return Recorded(samples, GAP_STEPS * step, f"Prometheus, one point every {step:g} s")

    def _local(self, vhost: str, queue: str, since: float) -> Recorded:
        if self.history is None:
            raise HistoryUnavailable(
                "No local history: the history file cannot be opened (see WARREN_HISTORY_DB)."
            )
        try:
            samples = self.history.series(vhost, queue, since)
        except DatabaseError as exc:
            raise HistoryUnavailable(
                f"The history at {self.history.database.where} cannot be read: {exc}."
            ) from None
        latest = self.history.latest(vhost, queue)
        if latest is not None and (not samples or latest.at > samples[-1].at):
            samples.append(latest)
        return Recorded(
            samples,
            HEARTBEAT_SECONDS + GAP_STEPS * self.refresh_seconds,
            f"Warren's history: every change seen by its polls (every {self.refresh_seconds:g} s),"
            f" and once every {HEARTBEAT_SECONDS} s while the counts stand still",
        )


def filled(recorded: Recorded, broker_samples: list[CountSample]) -> Series:
    """`recorded`, with the broker's samples wherever it has none near. Samples that count
    nothing at all may be the broker's padding (its newest lags behind a new queue's first
    messages): beside samples of Warren's own they add nothing."""
    if recorded.samples and not any(s.ready or s.unacked for s in broker_samples):
        broker_samples = []
    reach = recorded.reach
    times = [sample.at for sample in recorded.samples]
    fill = [
        Sample(s.at.timestamp(), s.ready, s.unacked, None, None)
        for s in broker_samples
        if not _near(times, s.at.timestamp(), reach)
    ]
    tagged = sorted(
        [(sample, reach) for sample in recorded.samples]
        + [(sample, GAP_STEPS * BROKER_STEP) for sample in fill],
        key=lambda item: item[0].at,
    )
    return Series(spaced(tagged), _source(recorded, fill))


def _near(times: list[float], at: float, reach: float) -> bool:
    """Whether a time of `times` (oldest first) lies within `reach` of `at`."""
    index = bisect_left(times, at - reach)
    return index < len(times) and times[index] <= at + reach


def _source(recorded: Recorded, fill: list[Sample]) -> str:
    if not fill:
        return recorded.source or BROKER_SOURCE
    if not recorded.samples:
        return BROKER_SOURCE
    return f"{recorded.source}; where it has none, {BROKER_SOURCE}, for {_stretches(fill)} UTC"


def _stretches(fill: list[Sample]) -> str:
    """The stretches of time `fill` covers, as `06:12:00-06:16:00, 06:18:10`: neighbouring
    broker samples lie one step apart, so a longer step starts a new stretch."""
    stretches: list[tuple[float, float]] = []
    for sample in fill:
        if stretches and sample.at - stretches[-1][1] <= 1.5 * BROKER_STEP:
            stretches[-1] = (stretches[-1][0], sample.at)
        else:
            stretches.append((sample.at, sample.at))
    return ", ".join(
        _clock(first) if first == last else f"{_clock(first)}-{_clock(last)}"
        for first, last in stretches
    )


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")
