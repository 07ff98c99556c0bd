"""Each tenant queue's last hour at a glance: its ready count in spans, small enough for a line in
a table row, and the backlogs that grow fastest. From Warren's own history (what its
overview polls saw), so only as complete as the time someone had the console open."""

from pydantic import BaseModel

from dashboard.database import DatabaseError
from dashboard.errors import WarrenError
from dashboard.reads.history import History

WINDOW_SECONDS = 3600
SPANS = 30
# No crying wolf: a backlog "grows fastest" only when it grew this much, seen in this many spans.
MIN_GROWTH = 100
MIN_SPANS = 5
MOST_GROWING = 5


class TrendsUnavailable(WarrenError):
    """The history cannot be read."""


class QueueTrend(BaseModel):
    # The ready count at each span's last full poll, oldest first; None where it did not see the
    # queue.
    ready: list[int | None]

    @property
    def known(self) -> list[int]:
        return [count for count in self.ready if count is not None]

    @property
    def growth(self) -> int | None:
        """Ready now minus ready at the first span with a sample; None with fewer than two."""
        known = self.known
        return known[-1] - known[0] if len(known) > 1 else None

    @property
    def growth_seconds(self) -> float:
        """How long the growth took: from the first span with a sample to the last."""
        spans = [span for span, count in enumerate(self.ready) if count is not None]
        return (spans[-1] - spans[0]) * WINDOW_SECONDS / SPANS if spans else 0.0

    @property
    def grows(self) -> bool:
        return len(self.known) >= MIN_SPANS and (self.growth or 0) >= MIN_GROWTH


class Trends(BaseModel):
    by_queue: dict[str, QueueTrend]

    @property
    def growing_fastest(self) -> list[str]:
        """At most MOST_GROWING queues that really grew, most growth first."""
        growing = [queue for queue, trend in self.by_queue.items() if trend.grows]
        growing.sort(key=lambda queue: -(self.by_queue[queue].growth or 0))
        return growing[:MOST_GROWING]


def fetch_trends(history: History, vhost: str, now: float) -> Trends:
    """The last WINDOW_SECONDS before `now` of every queue of `vhost`, in SPANS spans."""
    try:
        spans = history.ready_trends(vhost, now - WINDOW_SECONDS, now, SPANS)
    except DatabaseError as exc:
        raise TrendsUnavailable(
            f"The last hour cannot be shown: the history at {history.database.where} cannot be "
            f"read: {exc}."
        ) from None
    return Trends(by_queue={queue: QueueTrend(ready=ready) for queue, ready in spans.items()})
