"""One shared poll of the broker for every viewer: at most one fetch per interval, and the last
good data kept (with when the failures began) while the broker does not answer."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, TypeVar

from dashboard.broker.session import Session
from dashboard.errors import WarrenError
from dashboard.reads.consumers import AckWatch, fetch_consumers
from dashboard.reads.history import History
from dashboard.reads.kept_topology import kept_topologies
from dashboard.reads.models import ConsumerReport, Overview, Unrouted
from dashboard.reads.nodes import Cluster, fetch_cluster
from dashboard.reads.overview import OverviewReader
from dashboard.reads.stuck import Memory, flag_overview
from dashboard.reads.unrouted import fetch_unrouted
from dashboard.tuning import release_memory

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
    """Calls `fetch` once per `interval` seconds while anyone reads it, however many readers.

    A background thread polls on the interval, so no reader's timing adds a poll and none waits
    on a slow broker: readers get the latest snapshot at once (only the very first ones wait
    for the first fetch). Once nobody has read for IDLE_INTERVALS intervals the thread stops,
    calls `forget` (what the fetch keeps between fetches) and gives the memory back to the
    system; the next reader starts again with a fresh fetch. The last snapshot stays: it is
    what a reader sees, marked stale, if that fetch fails (a broker down since).
    """

    IDLE_INTERVALS = 3

    def __init__(
        self, fetch: Callable[[], T], interval: float, forget: Callable[[], None] | None = None
    ):
        self._fetch = fetch
        self._forget = forget
        self.interval = interval
        self._lock = threading.Lock()  # one fetch at a time
        self._poller_lock = threading.Lock()  # one polling thread at a time
        self._snapshot: Snapshot[T] = Snapshot()
        self._polled_at = 0.0
        self._read_at = 0.0
        self._poller: threading.Thread | None = None
        self.fetches = 0

    def get(self) -> Snapshot[T]:
        self._read_at = time.monotonic()
        if self._outdated():
            # The first reader, or the first after an idle spell: one fetch, waited for.
            with self._lock:
                if self._outdated():
                    self._refresh()
        self._keep_polling()
        return self._snapshot

    def refresh(self) -> Snapshot[T]:
        """A fetch now, waited for: after an action, so that what its page shows next is read
        after it."""
        with self._lock:
            self._refresh()
        return self._snapshot

    def _outdated(self) -> bool:
        polled = self._snapshot.fetched_at is not None or self._snapshot.error is not None
        idle = self._poller is None and time.monotonic() - self._polled_at >= self.interval
        return not polled or idle

    def _keep_polling(self) -> None:
        with self._poller_lock:
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, daemon=True, name="warren-poll")
                self._poller.start()

    def _poll(self) -> None:
        while True:
            time.sleep(max(0.0, self._polled_at + self.interval - time.monotonic()))
            with self._poller_lock:
                if time.monotonic() - self._read_at > self.IDLE_INTERVALS * self.interval:
                    self._poller = None
                    if self._forget is not None:
                        with self._lock:
                            self._forget()
                    break
            with self._lock:
                self._refresh()
        release_memory()

    def _refresh(self) -> None:
        self.fetches += 1
        self._polled_at = time.monotonic()
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


class OverviewPolling:
    """The overview poll's fetch, and what it keeps from one fetch to the next (the topology,
    the backlogs and silences known, the last metrics answer) until nobody looks."""

    def __init__(self, session: Session, history: History | None):
        self.session = session
        self.history = history
        self.forget()

    def forget(self) -> None:
        self.reader = OverviewReader(self.session, kept_topologies(self.session.settings))
        self.memory = Memory()
        if self.session.metrics is not None:
            self.session.metrics.forget()

    def read(self) -> Overview:
        overview = self.reader.read()
        flag_overview(
            overview, self.history, self.session.settings, session=self.session, memory=self.memory
        )
        overview.unrouted = unrouted_or_none(self.session)
        return overview


def overview_poll(session: Session, history: History | None) -> SharedPoll[Overview]:
    """The tenant overview, flagged and recorded in `history`, every WARREN_REFRESH_SECONDS."""
    polling = OverviewPolling(session, history)
    return SharedPoll(polling.read, session.settings.refresh_seconds, polling.forget)


def unrouted_or_none(session: Session) -> Unrouted | None:
    """What the tenant exchange dropped and captured, without the ids (a read of the capture
    queue's messages, for who asks); None, logged, when it cannot be read: the overview stands."""
    try:
        return fetch_unrouted(session, list_ids=False)
    except WarrenError as exc:
        log.warning("unrouted messages not read: %s", exc)
        return None


def consumers_poll(session: Session) -> SharedPoll[ConsumerReport]:
    """Per-consumer load, every WARREN_REFRESH_SECONDS, with "no ack" proven across polls."""
    watch = AckWatch()
    return SharedPoll(lambda: fetch_consumers(session, watch), session.settings.refresh_seconds)


def cluster_poll(session: Session) -> SharedPoll[Cluster]:
    """The cluster's nodes and alarms, every WARREN_REFRESH_SECONDS (one small request each)."""
    return SharedPoll(lambda: fetch_cluster(session), session.settings.refresh_seconds)
