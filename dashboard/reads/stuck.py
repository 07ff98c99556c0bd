"""Stuck-tenant rules for the overview, each with the one-line reason an on-call engineer reads:

- a backlog nobody consumes: ready > 0 and no consumer;
- consumers holding messages without acking: unacked > 0 and the queue's ack count unchanged for
  the whole window (WARREN_STUCK_AFTER_SECONDS), per the local history;
- a dead-letter queue that grows: more dead letters now than at the start of the window
  (WARREN_DEAD_LETTER_WINDOW_SECONDS), or than when Warren first saw it if that is later.
"""

import logging
import sqlite3
import time

from dashboard.reads.durations import duration_text
from dashboard.reads.history import History, Sample
from dashboard.reads.models import Flag, Overview, TenantRow
from dashboard.settings import Settings

log = logging.getLogger(__name__)


def flag_overview(
    overview: Overview, history: History | None, settings: Settings, now: float | None = None
) -> None:
    """Record the overview in the history (when there is one) and flag its stuck tenants.

    Without history only the rules that need no window apply.
    """
    moment = time.time() if now is None else now
    samples: dict[str, list[Sample]] = {}
    if history is not None:
        # Twice the window: a rule needs a sample from before the window began to fire at all.
        window = max(settings.stuck_after_seconds, settings.dead_letter_window_seconds)
        oldest = moment - 2 * window
        try:
            history.record(overview, moment)
            samples = history.recent(overview.vhost, oldest)
        except sqlite3.Error as exc:
            log.warning("history at %s not available: %s", history.path, exc)
    for row in overview.rows:
        row.flags = tenant_flags(
            row,
            samples.get(row.queue, []),
            moment,
            settings.stuck_after_seconds,
            settings.dead_letter_window_seconds,
        )


def tenant_flags(
    row: TenantRow,
    samples: list[Sample],
    now: float,
    stuck_after: float,
    dead_letter_window: float,
) -> list[Flag]:
    """`samples` are the queue's history, oldest first, the current poll included."""
    flags = []
    if row.ready > 0 and row.consumers == 0:
        flags.append(Flag(kind="no-consumer", reason=f"{row.ready:,} ready and no consumer."))
    silent_for = _unacked_without_acks_for(row, samples, now)
    if silent_for is not None and silent_for >= stuck_after:
        flags.append(
            Flag(
                kind="no-acks",
                reason=f"{row.unacked:,} unacked and no ack for {duration_text(silent_for)}.",
            )
        )
    grown = _dead_letter_growth(row, samples, now - dead_letter_window)
    if grown:
        start, added = grown
        flags.append(
            Flag(
                kind="dead-letters-growing",
                reason=f"Dead-letter queue {row.dead_letter_queue} grew by {added:,} in the last "
                f"{duration_text(now - start)} (now {row.dead_letters:,}).",
            )
        )
    return flags


def _unacked_without_acks_for(row: TenantRow, samples: list[Sample], now: float) -> float | None:
    """How long the queue has had unacked messages and the same ack count, back to the oldest
    sample that agrees (a lower bound when history is short); None when it acked just now."""
    if row.unacked == 0:
        return None
    since = None
    for sample in reversed(samples):
        if sample.unacked == 0 or sample.acks != row.acks:
            break
        since = sample.at
    return None if since is None else now - since


def _dead_letter_growth(
    row: TenantRow, samples: list[Sample], window_start: float
) -> tuple[float, int] | None:
    if row.dead_letters is None:
        return None
    earlier = [s for s in samples if s.at >= window_start and s.dead_letters is not None]
    if not earlier or row.dead_letters <= earlier[0].dead_letters:
        return None
    return earlier[0].at, row.dead_letters - earlier[0].dead_letters
