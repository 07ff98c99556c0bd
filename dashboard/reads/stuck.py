"""Stuck-tenant rules for the overview, each with the one-line reason an on-call engineer reads:

- a backlog nobody consumes: ready > 0 and no consumer;
- consumers holding messages without acking: unacked > 0 and the queue's ack count unchanged for
  the whole window (WARREN_STUCK_AFTER_SECONDS), per the local history and the broker's own
  samples (reads/silence.py: the same definition the consumers' flags use);
- a dead-letter queue that grows: more dead letters now than at the start of the window
  (WARREN_DEAD_LETTER_WINDOW_SECONDS), or than when Warren first saw it if that is later;
- a redelivery loop: over WARREN_REDELIVERY_WINDOW_SECONDS, at least two redeliveries and more
  of them than acks (the queue's `message_stats.redeliver` against `ack`);
- a growing backlog, and how long work waits (reads/waiting.py).
"""

import logging
import sqlite3
import time
from dataclasses import dataclass, field

from dashboard.broker.session import Session
from dashboard.reads.durations import duration_text
from dashboard.reads.history import History, Sample
from dashboard.reads.models import Flag, Overview, TenantRow
from dashboard.reads.queue_detail import BROKER_SECONDS
from dashboard.reads.silence import Silence, earliest, queue_silences
from dashboard.reads.waiting import Backlogs, backlog_growing, remember_backlogs, wait_of
from dashboard.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Memory:
    """What a poll keeps from one overview to the next, so as not to ask again."""

    # The broker's samples of a queue's silence, with the ack count they were read at.
    heard: dict[str, tuple[int, Silence]] = field(default_factory=dict)
    backlogs: Backlogs = field(default_factory=dict)
    # Per (count, window): each queue's first sample in the window that holds the count, as
    # last read. It stays the first while the window still holds it (samples are only ever
    # added after it), so only queues without one, or whose first left the window, are asked.
    firsts: dict[tuple[str, float], dict[str, Sample]] = field(default_factory=dict)


def flag_overview(
    overview: Overview,
    history: History | None,
    settings: Settings,
    now: float | None = None,
    session: Session | None = None,
    memory: Memory | None = None,
) -> None:
    """Record the overview in the history (when there is one), flag its stuck tenants and say
    how long their work waits.

    With `session`, the broker's samples prove what the history cannot (yet): a silence that
    began before its first sample; `memory` (a poll's) spares asking the broker again while a
    queue's ack count stands, and the history again while a backlog lasts. Without either,
    only the rules that need no window apply.
    """
    moment = time.time() if now is None else now
    memory = Memory() if memory is None else memory
    # Only where the statistics were read is an ack count known, and a silence provable.
    judged = [row for row in overview.rows if row.acks is not None]
    held = {row.queue: row.acks for row in judged if row.unacked}
    found: dict[str, tuple[float, bool] | None] = {}
    first_dead: dict[str, Sample] = {}
    first_redelivered: dict[str, Sample] = {}
    growth: tuple[dict[str, Sample], dict[str, Sample]] = ({}, {})
    if history is not None:
        # Twice the window: a rule needs a sample from before the window began to fire at all.
        window = max(settings.stuck_after_seconds, settings.dead_letter_window_seconds)
        dead = [row.queue for row in overview.rows if row.dead_letters]
        try:
            history.record(overview, moment)
            found = history.held_silences(overview.vhost, held, moment - 2 * window)
            firsts = _FirstSamples(history, memory, overview.vhost, moment)
            first_dead = firsts.of(dead, "dead_letters", settings.dead_letter_window_seconds)
            redelivered = [row.queue for row in overview.rows if row.redeliveries]
            first_redelivered = firsts.of(
                redelivered, "redeliveries", settings.redelivery_window_seconds
            )
            growth = _growth_samples(firsts, overview, settings.backlog_window_seconds)
            remember_backlogs(memory.backlogs, overview, history, moment)
        except sqlite3.Error as exc:
            log.warning("history at %s not available: %s", history.path, exc)
    remember_backlogs(memory.backlogs, overview, None, moment)
    silences = {
        row.queue: Silence(*found[row.queue]) if found.get(row.queue) else None
        for row in overview.rows
    }
    if history is not None:
        _look_further_back(history, overview, silences)
    if session is not None:
        # The broker's samples reach back 10 minutes: a silence known longer gains nothing.
        reach = moment - BROKER_SECONDS
        unsure = [
            row
            for row in judged
            if row.unacked
            and (
                row.queue not in found
                or (_reaches_back(silences[row.queue]) and silences[row.queue].since > reach)
            )
        ]
        _add_broker_evidence(session, unsure, silences, memory.heard)
    for row in overview.rows:
        row.wait = wait_of(row, memory.backlogs.get(row.queue), moment)
        row.flags = tenant_flags(
            row,
            first_dead.get(row.queue),
            first_redelivered.get(row.queue),
            moment,
            settings.stuck_after_seconds,
            silences[row.queue],
        )
        growing = backlog_growing(row, growth[0].get(row.queue), growth[1].get(row.queue), moment)
        if growing:
            row.flags.append(growing)


@dataclass
class _FirstSamples:
    """The history's first samples in a window, through a poll's memory of them."""

    history: History
    memory: Memory
    vhost: str
    moment: float

    def of(self, queues: list[str], count: str, window: float) -> dict[str, Sample]:
        """Each of `queues`' first sample from `window` seconds ago on that holds `count`
        (`History.first_counting`)."""
        since = self.moment - window
        known = self.memory.firsts.get((count, window), {})
        firsts = {q: first for q in queues if (first := known.get(q)) and first.at >= since}
        asked = [queue for queue in queues if queue not in firsts]
        if asked:
            firsts.update(self.history.first_counting(self.vhost, asked, since, count))
        self.memory.firsts[(count, window)] = firsts
        return firsts


def _growth_samples(
    firsts: _FirstSamples, overview: Overview, window: float
) -> tuple[dict[str, Sample], dict[str, Sample]]:
    """The first samples from the window's start and from its middle, of the queues whose
    backlog could be outgrowing their consumers."""
    served = [row.queue for row in overview.rows if row.ready and row.consumers]
    return tuple(firsts.of(served, "ready", span) for span in (window, window / 2))


def _look_further_back(
    history: History, overview: Overview, silences: dict[str, Silence | None]
) -> None:
    """A silence as old as the window read: the whole history says when it began."""
    reaching = {row.queue: row.acks for row in overview.rows if _reaches_back(silences[row.queue])}
    if not reaching:
        return
    try:
        found = history.held_silences(overview.vhost, reaching, float("-inf"))
    except sqlite3.Error as exc:
        log.warning("history at %s not available: %s", history.path, exc)
        return
    for queue, held in found.items():
        if held is not None:
            silences[queue] = Silence(held[0], at_least=held[1])


def _reaches_back(silence: Silence | None) -> bool:
    return silence is not None and silence.at_least


def _add_broker_evidence(
    session: Session,
    unsure: list[TenantRow],
    silences: dict[str, Silence | None],
    heard: dict[str, tuple[int, Silence]],
) -> None:
    """The broker's samples for the queues whose history shows no start of their silence (or
    has none), the most unacked first; asked once while a queue's ack count stands (a silence
    found cannot begin later), and forgotten once the history knows."""
    current = {row.queue: row.acks for row in unsure}
    for queue in [queue for queue, (acks, _) in heard.items() if current.get(queue) != acks]:
        del heard[queue]
    unheard = sorted((row for row in unsure if row.queue not in heard), key=lambda r: -r.unacked)
    found = queue_silences(session, {row.queue: row.acks for row in unheard})
    heard.update({queue: (current[queue], silence) for queue, silence in found.items()})
    for queue, (_, silence) in heard.items():
        silences[queue] = earliest(silences[queue], silence)


def tenant_flags(
    row: TenantRow,
    first_dead: Sample | None,
    first_redelivered: Sample | None,
    now: float,
    stuck_after: float,
    silence: Silence | None,
) -> list[Flag]:
    """`first_dead` and `first_redelivered`, the history's first samples in their windows that
    count dead letters and redeliveries; `silence`, how long it has held messages unacked."""
    flags = []
    if row.ready > 0 and row.consumers == 0:
        flags.append(Flag(kind="no-consumer", reason=f"{row.ready:,} ready and no consumer."))
    if silence is not None and silence.seconds(now) >= stuck_after:
        flags.append(
            Flag(
                kind="no-acks",
                reason=f"{row.unacked:,} unacked and no ack for {silence.text(now)}.",
            )
        )
    if row.dead_letters and first_dead and row.dead_letters > first_dead.dead_letters:
        start, added = first_dead.at, row.dead_letters - first_dead.dead_letters
        flags.append(
            Flag(
                kind="dead-letters-growing",
                reason=f"Dead-letter queue {row.dead_letter_queue} grew by {added:,} in the last "
                f"{duration_text(now - start)} (now {row.dead_letters:,}).",
            )
        )
    loop = _redelivery_loop(row, first_redelivered, now)
    if loop:
        flags.append(loop)
    return flags


def _redelivery_loop(row: TenantRow, first: Sample | None, now: float) -> Flag | None:
    """Redeliveries growing faster than acks over the window: work that keeps coming back."""
    if first is None or first.redeliveries is None or row.redeliveries is None:
        return None
    redelivered = row.redeliveries - first.redeliveries
    acked = row.acks - (first.acks or 0)
    if redelivered < 2 or redelivered <= acked:
        return None
    return Flag(
        kind="redelivery-loop",
        reason=f"{redelivered:,} redeliveries and {acked:,} acks in the last "
        f"{duration_text(now - first.at)}: work that keeps coming back. Likely a pod that dies "
        "on a message (a poison message), the broker's consumer timeout closing channels that "
        "hold long jobs, or consumers rejecting with requeue.",
    )
