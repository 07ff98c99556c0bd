"""One shared poll of the broker for every viewer: at most one fetch per interval, and the last
good data kept (with when the failures began) while the broker does not answer."""

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, TypeVar

from dashboard.consumers import AckWatch, fetch_consumers
from dashboard.errors import WarrenError
from dashboard.history import History
from dashboard.management import ManagementClient
from dashboard.metrics import QueueMetrics, metrics_url
from dashboard.models import ConsumerReport, Overview
from dashboard.settings import Settings
from dashboard.stuck import flag_overview
from dashboard.tenants import OverviewReader

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    data: T | None = None
    fetched_at: datetime | None = None
    # The latest poll's failure; None when it succeeded.
    error: WarrenError | None = None
    failing_since: datetime | None = None

    @property
    def stale(self) -> bool:
        return self.error is not None


class SharedPoll(Generic[T]):
    """Calls `fetch` about once per `interval` seconds, however many callers ask.

    A caller that arrives while another is fetching gets the previous snapshot at once, rather
    than waiting on a slow broker; only the very first callers wait.
    """

    def __init__(self, fetch: Callable[[], T], interval: float, clock=time.monotonic):
        self._fetch = fetch
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot[T] = Snapshot()
        self._polled_at: float | None = None
        self.fetches = 0

    def get(self) -> Snapshot[T]:
        if self._fresh():
            return self._snapshot
        nothing_yet = self._snapshot.fetched_at is None and self._snapshot.error is None
        if not self._lock.acquire(blocking=nothing_yet):
            return self._snapshot
        try:
            if not self._fresh():
                self._refresh()
            return self._snapshot
        finally:
            self._lock.release()

    def _fresh(self) -> bool:
        # Viewers re-ask every `interval`, a hair after the previous poll began: without slack
        # their ticks would find it fresh and every other interval would go unpolled.
        slack = min(1.0, 0.2 * self.interval)
        return (
            self._polled_at is not None and self._clock() - self._polled_at < self.interval - slack
        )

    def _refresh(self) -> None:
        self.fetches += 1
        self._polled_at = self._clock()
        now = datetime.now(UTC)
        try:
            self._snapshot = Snapshot(data=self._fetch(), fetched_at=now)
        except WarrenError as exc:
            self._snapshot = self._failed(exc, now)
        except Exception as exc:
            # A bug, or an answer of a shape Warren does not know: logged in full, shown as a
            # sentence.
            log.exception("poll failed")
            self._snapshot = self._failed(
                WarrenError(f"Warren could not read the broker's answer ({type(exc).__name__})."),
                now,
            )

    def _failed(self, error: WarrenError, now: datetime) -> Snapshot[T]:
        return replace(
            self._snapshot, error=error, failing_since=self._snapshot.failing_since or now
        )


def overview_poll(settings: Settings, history: History | None) -> SharedPoll[Overview]:
    """The tenant overview, flagged and recorded in `history`, every WARREN_REFRESH_SECONDS."""
    url = metrics_url(settings)
    reader = OverviewReader(
        ManagementClient(settings),
        settings,
        QueueMetrics(url, settings.request_timeout) if url else None,
    )

    def read() -> Overview:
        overview = reader.read()
        flag_overview(overview, history, settings)
        return overview

    return SharedPoll(read, settings.refresh_seconds)


def consumers_poll(settings: Settings) -> SharedPoll[ConsumerReport]:
    """Per-consumer load, every WARREN_REFRESH_SECONDS over one HTTP session."""
    client = ManagementClient(settings)
    watch = AckWatch()
    return SharedPoll(
        lambda: fetch_consumers(
            client,
            settings.vhost,
            settings.tenant_exchange,
            settings.stuck_after_seconds,
            watch=watch,
        ),
        settings.refresh_seconds,
    )


def open_history(settings: Settings) -> History | None:
    """The history store, or None (logged) when its file cannot be opened."""
    try:
        return History(settings.history_db, settings.history_hours * 3600, settings.management_url)
    except (OSError, sqlite3.Error) as exc:
        log.warning("no history: %s cannot be opened: %s", settings.history_db, exc)
        return None
