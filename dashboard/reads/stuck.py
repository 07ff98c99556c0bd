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
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from heapq import nlargest
from typing import NamedTuple

from dashboard.broker.session import Session
from dashboard.database import DatabaseError
from dashboard.reads.durations import duration_text
from dashboard.reads.history import History, Sample
from dashboard.reads.models import Flag, Overview, TenantRow
from dashboard.reads.queue_detail import BROKER_SECONDS
from dashboard.reads.silence import MOST_QUEUES_SAMPLED, Silence, earliest, queue_silences
from dashboard.reads.waiting import (
    Backlogs,
    backlog_growing,
    remember_backlogs,
    wait_of,
)
from dashboard.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Memory:
    """What a poll keeps from one overview to the next, so as not to ask again."""

    # The broker's samples of a queue's silence, with the ack count they were read at.
    heard: dict[str, tuple[int, Silence]] = field(default_factory=dict)
    # The history's silence of a queue, with the ack count it was read at. While every poll
    # sees the queue holding messages at that count, the history gains only samples that
    # continue it, so the silence found stays the answer.
    silent: dict[str, tuple[int, Silence]] = field(default_factory=dict)
    backlogs: Backlogs = field(default_factory=dict)
    # Per (count, window): each queue's first sample in the window that holds the count, as
    # last read. It stays the first while the window holds it (samples are only ever
    # added after it), so only queues without one, or whose first left the window, are asked.
    firsts: dict[tuple[str, float], dict[str, Sample]] = field(default_factory=dict)
    # The rows the last poll flagged, by id (see `_flag_rows`).
    flagged: dict[int, "_Flagged"] = field(default_factory=dict)


class _Rows(NamedTuple):
    """The queues each rule looks at, sorted out of the overview's rows in one pass (a poll at
    scale has 100,000 of them)."""

    # Queue -> its ack count, for those holding unacked messages with statistics read.
    held: dict[str, int]
    # Queue -> its most dead letters (of its rows: tenant ids may route them apart).
    dead: dict[str, int]
    # Queue -> its redeliveries, where any.
    redelivered: dict[str, int]
    # With ready messages and consumers: a backlog that may outgrow them.
    served: list[str]
    # With ready messages, counted by the broker.
    backlogged: set[str]


def _sorted_out(overview: Overview) -> _Rows:
    found = _Rows({}, {}, {}, [], set())
    for row in overview.rows:
        queue = row.queue
        if row.unacked and row.acks is not None:
            found.held[queue] = row.acks
        if row.dead_letters:
            found.dead[queue] = max(row.dead_letters, found.dead.get(queue, 0))
        if row.redeliveries:
            found.redelivered[queue] = row.redeliveries
        if row.ready:
            if row.consumers:
                found.served.append(queue)
            if row.counted:
                found.backlogged.add(queue)
    return found


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
    queue's ack count stands, and the history again while a backlog or a silence lasts.
    Without either, only the rules that need no window apply.
    """
    moment = time.time() if now is None else now
    memory = Memory() if memory is None else memory
    rows = _sorted_out(overview)
    silences: dict[str, Silence | None] = {}
    first_dead: dict[str, Sample] = {}
    first_redelivered: dict[str, Sample] = {}
    growth: tuple[dict[str, Sample], dict[str, Sample]] = ({}, {})
    if history is not None:
        try:
            history.record(overview, moment)
            silences = _held_silences(history, memory, overview.vhost, rows.held, moment, settings)
            firsts = _FirstSamples(history, memory, overview.vhost, moment)
            first_dead = firsts.of(rows.dead, "dead_letters", settings.dead_letter_window_seconds)
            first_redelivered = firsts.of(
                rows.redelivered, "redeliveries", settings.redelivery_window_seconds
            )
            window = settings.backlog_window_seconds
            growth = tuple(firsts.of(rows.served, "ready", span) for span in (window, window / 2))
            remember_backlogs(memory.backlogs, overview.vhost, rows.backlogged, history, moment)
        except DatabaseError as exc:
            log.warning("history at %s not available: %s", history.database.where, exc)
    remember_backlogs(memory.backlogs, overview.vhost, rows.backlogged, None, moment)
    if session is not None:
        _add_broker_evidence(session, overview, rows.held, silences, memory.heard, moment)
    evidence = _Evidence(
        silences, first_dead, first_redelivered, growth, _acks_read_at(overview, moment)
    )
    _flag_rows(overview, memory, evidence, rows, moment, settings)


def _acks_read_at(overview: Overview, moment: float) -> float:
    """When the rows' ack counts were read: a console lists them with the statistics, every
    WARREN_TOPOLOGY_SECONDS, and lays fresh counts over them meanwhile. An ack count that old
    stands still in every poll in between, so a silence is proven up to its reading only (else
    a queue that acks reads "no ack for" as long as its statistics' age)."""
    listed = overview.statistics_at
    if listed is None:
        return moment
    return moment - max(0.0, (overview.fetched_at - listed).total_seconds())


class _Evidence(NamedTuple):
    """What the history and the broker showed, for the rules that need a window."""

    silences: dict[str, Silence | None]
    first_dead: dict[str, Sample]
    first_redelivered: dict[str, Sample]
    # The backlog's first samples in its window, and in the window's second half.
    growth: tuple[dict[str, Sample], dict[str, Sample]]
    acks_read_at: float


def _flag_rows(
    overview: Overview,
    memory: Memory,
    evidence: _Evidence,
    rows: _Rows,
    moment: float,
    settings: Settings,
) -> None:
    """Each row's wait and flags. A row the last poll flagged, reused as it was (reads/overview.py
    `LastRows`) and with the same backlog, keeps its wait (brought up to now) and the flags that
    do not read the clock; the rules that do are asked only where the history or the broker
    gave them evidence. At 100,000 queues whose counts mostly stand, that is little work."""
    backlogs, known_rows, timed = memory.backlogs, memory.flagged, _with_evidence(evidence, rows)
    flagged: dict[int, _Flagged] = {}
    for row in overview.rows:
        queue = row.queue
        backlog = backlogs.get(queue)
        # Keyed by id: the entry holds the row, so no other row can take its id meanwhile.
        known = known_rows.get(id(row))
        if known is not None and known.backlog == backlog:
            if row.wait is not None:
                row.wait.as_of = moment
        else:
            row.wait = wait_of(row, backlog, moment) if row.ready else None
            known = _Flagged(row, backlog, standing_flags(row))
        flagged[id(row)] = known
        clocked = timed_flags(row, evidence, moment, settings) if queue in timed else None
        row.flags = known.standing + clocked if clocked else known.standing
    memory.flagged = flagged


def _with_evidence(evidence: _Evidence, rows: _Rows) -> set[str]:
    """The queues a rule that reads the clock may flag: a silence; more dead letters, or at
    least two more redeliveries, than the first sample in their window; a backlog that rose
    from the window's start to its middle. (Most queues with consumers have samples in the
    window, and a counter since the broker started, but few grow.)"""
    starts, middles = evidence.growth
    silent = (queue for queue, silence in evidence.silences.items() if silence is not None)
    dead = (
        queue
        for queue, first in evidence.first_dead.items()
        if rows.dead[queue] > first.dead_letters
    )
    looping = (
        queue
        for queue, first in evidence.first_redelivered.items()
        if rows.redelivered[queue] - first.redeliveries >= 2
    )
    rising = (
        queue
        for queue, middle in middles.items()
        if (start := starts.get(queue)) and start.at < middle.at and start.ready < middle.ready
    )
    return {*silent, *dead, *looping, *rising}


class _Flagged(NamedTuple):
    """A row as the last poll flagged it: the backlog its wait was worked out from, and its
    flags that do not read the clock."""

    row: TenantRow
    backlog: tuple[float, bool] | None
    standing: list[Flag]


def _held_silences(
    history: History,
    memory: Memory,
    vhost: str,
    held: dict[str, int],
    moment: float,
    settings: Settings,
) -> dict[str, Silence | None]:
    """Each held queue's silence in the history (None where its latest sample breaks it, absent
    where it has none): asked for the queues the poll's memory does not know at today's ack
    count, within twice the longest window first (a rule needs a sample from before its window
    began to fire at all), then, for a silence as old as that, in the whole history."""
    known = memory.silent
    for queue in [queue for queue, (acks, _) in known.items() if held.get(queue) != acks]:
        del known[queue]
    asked = {queue: acks for queue, acks in held.items() if queue not in known}
    window = max(settings.stuck_after_seconds, settings.dead_letter_window_seconds)
    found = _silences_in(history, vhost, asked, moment - 2 * window)
    reaching = {queue: asked[queue] for queue, silence in found.items() if _reaches_back(silence)}
    found.update(_silences_in(history, vhost, reaching, float("-inf")))
    known.update((queue, (asked[queue], silence)) for queue, silence in found.items() if silence)
    return found | {queue: silence for queue, (_, silence) in known.items()}


def _silences_in(
    history: History, vhost: str, acks: dict[str, int], since: float
) -> dict[str, Silence | None]:
    if not acks:
        return {}
    found = history.held_silences(vhost, acks, since)
    return {queue: Silence(*held) if held else None for queue, held in found.items()}


@dataclass
class _FirstSamples:
    """The history's first samples in a window, through a poll's memory of them."""

    history: History
    memory: Memory
    vhost: str
    moment: float

    def of(self, queues: Collection[str], count: str, window: float) -> dict[str, Sample]:
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


def _reaches_back(silence: Silence | None) -> bool:
    return silence is not None and silence.at_least


def _add_broker_evidence(
    session: Session,
    overview: Overview,
    held: dict[str, int],
    silences: dict[str, Silence | None],
    heard: dict[str, tuple[int, Silence]],
    moment: float,
) -> None:
    """The broker's samples for the held queues whose history shows no start of their silence
    (or has none), the most unacked first; asked once while a queue's ack count stands (a
    silence found cannot begin later), and forgotten once the history knows. The broker's
    samples reach back 10 minutes: a silence known longer gains nothing."""
    reach = moment - BROKER_SECONDS
    unsure = {
        queue
        for queue in held
        if queue not in silences
        or (_reaches_back(silences[queue]) and silences[queue].since > reach)
    }
    for queue in [q for q, (acks, _) in heard.items() if q not in unsure or held[q] != acks]:
        del heard[queue]
    unheard = unsure - heard.keys()
    # Only the most unacked are asked (queue_silences): picked, not all sorted; and the rows
    # are not walked at all on the usual poll, where every unsure queue was heard already.
    most = (
        nlargest(
            MOST_QUEUES_SAMPLED,
            (row for row in overview.rows if row.queue in unheard),
            key=lambda row: row.unacked,
        )
        if unheard
        else []
    )
    found = queue_silences(session, {row.queue: row.acks for row in most})
    heard.update({queue: (held[queue], silence) for queue, silence in found.items()})
    for queue, (_, silence) in heard.items():
        silences[queue] = earliest(silences.get(queue), silence)


def standing_flags(row: TenantRow) -> list[Flag]:
    """The flags a row's counts alone raise: they stand while the counts do."""
    if row.ready > 0 and row.consumers == 0:
        return [Flag(kind="no-consumer", reason=f"{row.ready:,} ready and no consumer.")]
    return []


def timed_flags(row: TenantRow, evidence: _Evidence, now: float, settings: Settings) -> list[Flag]:
    """The flags that read the clock, from the row's queue's evidence: the history's first
    samples in their windows that count dead letters and redeliveries, its first samples in the
    backlog window and in the window's second half, and since when the queue has held messages
    unacked at the ack count read at `evidence.acks_read_at`."""
    queue, (starts, middles) = row.queue, evidence.growth
    first_dead = evidence.first_dead.get(queue)
    silence, acks_read_at = evidence.silences.get(queue), evidence.acks_read_at
    flags = []
    if silence is not None and silence.seconds(acks_read_at) >= settings.stuck_after_seconds:
        flags.append(
            Flag(
                kind="no-acks",
                reason=f"{row.unacked:,} unacked and no ack for {silence.text(acks_read_at)}.",
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
    loop = _redelivery_loop(row, evidence.first_redelivered.get(queue), now)
    if loop:
        flags.append(loop)
    growing = backlog_growing(row, starts.get(queue), middles.get(queue), now)
    if growing:
        flags.append(growing)
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
