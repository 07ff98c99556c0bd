"""How late a tenant's work is: how long its ready messages have waited, how soon they would
drain, and whether its backlog outgrows its consumers.

- The wait is the age of the oldest ready message where the broker tells it (the AMQP
  `timestamp` its producer set, which classic queues report as `head_message_timestamp`);
  otherwise how long the queue has not been without ready messages, from the history (without
  one, since this poll first saw the backlog: "at least").
- The drain time is the ready count at the current ack rate.
- `backlog-growing`: ready rose from the start of the window (WARREN_BACKLOG_WINDOW_SECONDS)
  to its middle and again to now, while the queue has consumers: too few pods for the work.
"""

from dashboard.reads.durations import duration_text
from dashboard.reads.history import History, Sample
from dashboard.reads.models import Flag, TenantRow, Wait

Backlogs = dict[str, tuple[float, bool]]


def remember_backlogs(
    known: Backlogs, vhost: str, backlogged: set[str], history: History | None, moment: float
) -> None:
    """Bring `known` (queue -> since when it has had ready messages, and whether it may be
    longer) up to a poll that found the queues of `backlogged` with ready messages (counted by
    the broker): a queue without them is forgotten, and the history is asked once per new
    backlog, not on every poll."""
    for queue in known.keys() - backlogged:
        del known[queue]
    new = sorted(backlogged - known.keys())
    if new and history is not None:
        known.update(history.backlogs(vhost, new, moment - history.retention_seconds))
    for queue in new:
        known.setdefault(queue, (moment, True))


def wait_of(row: TenantRow, backlog: tuple[float, bool] | None, now: float) -> Wait | None:
    if not row.ready:
        return None
    if row.head_timestamp:
        since, at_least = row.head_timestamp, False
    elif backlog:
        since, at_least = backlog
    else:
        return None
    drain_seconds = row.ready / row.ack_rate if row.ack_rate else None
    return Wait(
        measured_by="oldest-message" if row.head_timestamp else "backlog",
        at_least=at_least,
        drain_seconds=drain_seconds,
        drain=_drain_text(row, drain_seconds),
        since=since,
        as_of=now,
    )


def _drain_text(row: TenantRow, seconds: float | None) -> str:
    if seconds is not None:
        return f"about {duration_text(seconds)} at {row.ack_rate:,.1f}/s"
    if not row.consumers:
        return "never: no consumer"
    if row.ack_rate == 0:
        return "never: nothing is acked"
    if row.acks is None:
        return "unknown: the statistics were not read"
    # A queue that never acked has no ack rate at all.
    if row.acks == 0:
        return "never: nothing acked yet"
    return "unknown: the broker reports no ack rate"


def backlog_growing(
    row: TenantRow, start: Sample | None, middle: Sample | None, now: float
) -> Flag | None:
    """`start` and `middle`: the history's first samples from the window's start and from its
    middle; distinct, they span at least half the window."""
    if not row.consumers or start is None or middle is None or start.at >= middle.at:
        return None
    if not start.ready < middle.ready < row.ready:
        return None
    span = now - start.at
    per_minute = (row.ready - start.ready) / span * 60
    pods = f"{row.consumers} consumer{'s' if row.consumers != 1 else ''}"
    return Flag(
        kind="backlog-growing",
        reason=f"Ready grew from {start.ready:,} to {row.ready:,} in the last "
        f"{duration_text(span)}, about {per_minute:,.1f} a minute, with {pods}: too few pods "
        "for this tenant's work (or pods that stopped taking it).",
    )


def longest_waiting_first(rows: list[TenantRow]) -> list[TenantRow]:
    """The rows by how long their work has waited (those without a wait last, most ready
    first among them, as the overview orders them)."""
    return sorted(rows, key=lambda row: -row.wait.seconds if row.wait else float("inf"))
