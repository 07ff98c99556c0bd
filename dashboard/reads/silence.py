"""How long held work has gone without an ack: the one definition behind every "no ack for" of
Warren's flags, pages and CLI verbs, for a tenant queue and for a consumer's channel.

The silence begins at the earliest moment known to have had today's ack count ever since, with
messages held. The evidence is Warren's own (its history of polls, or a poll's memory of each
channel) and the broker's samples (its last 10 minutes, and an hour a minute apart); the silence
cannot begin before its holder existed (a channel's connection). Where all the evidence agrees
back to its oldest point, the silence may be longer than it shows: it reads "over" that long.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from dashboard.broker.models import QueueSamples, parse_all
from dashboard.broker.session import Session
from dashboard.reads.durations import duration_text
from dashboard.reads.queue_detail import BROKER_SECONDS, BROKER_STEP

# A poll asks the broker's samples of at most this many queues, the most unacked first.
MOST_QUEUES_SAMPLED = 20
# Beyond its last 10 minutes the broker keeps an hour of samples a minute apart (its `basic`
# retention policy): asked where the finer ones all agree, so that a console or a one-shot CLI
# run with no history of its own sees a 40-minute silence at its first poll.
HOUR_SECONDS = 3600
HOUR_STEP = 60


@dataclass(frozen=True)
class Silence:
    since: float
    # True when the evidence ends at `since`: the silence may have begun earlier.
    at_least: bool = False

    def seconds(self, now: float) -> float:
        return max(0.0, now - self.since)

    def text(self, now: float) -> str:
        return ("over " if self.at_least else "") + duration_text(self.seconds(now))


def silence_in(points: Sequence[tuple[float, bool]]) -> Silence | None:
    """From (moment, agrees) points oldest first, where `agrees` says the ack count was today's
    with work held: the silence they show, or None when the latest point disagrees."""
    since = None
    for at, agrees in reversed(points):
        if not agrees:
            return Silence(since) if since is not None else None
        since = at
    return Silence(since, at_least=True) if since is not None else None


def earliest(*evidence: Silence | None, not_before: float | None = None) -> Silence | None:
    """The longest silence the pieces of evidence (each reaching now) show together, cut at
    `not_before` (when the holder came to be: nothing was silent before it)."""
    known = [silence for silence in evidence if silence is not None]
    if not known:
        return None
    first = min(known, key=lambda silence: (silence.since, silence.at_least))
    if not_before is not None and first.since <= not_before:
        return Silence(not_before)
    return first


def queue_silences(session: Session, queues: dict[str, int]) -> dict[str, Silence]:
    """The broker's evidence for queues (name -> today's ack count): one small request for each
    of the MOST_QUEUES_SAMPLED first."""
    found = {}
    for queue, acks in list(queues.items())[:MOST_QUEUES_SAMPLED]:
        silence = _sampled_silence(session, queue, acks, BROKER_SECONDS, BROKER_STEP)
        if silence is not None and silence.at_least:
            further = _sampled_silence(session, queue, acks, HOUR_SECONDS, HOUR_STEP)
            silence = earliest(silence, further)
        if silence is not None:
            found[queue] = silence
    return found


def _sampled_silence(
    session: Session, queue: str, acks: int, seconds: int, step: int
) -> Silence | None:
    params = {
        "columns": "message_stats.ack_details,messages_unacknowledged_details",
        "msg_rates_age": str(seconds),
        "msg_rates_incr": str(step),
        "lengths_age": str(seconds),
        "lengths_incr": str(step),
    }
    raw = session.client.get_queue(session.vhost, queue, params)
    [samples] = parse_all(QueueSamples, [raw], f"the samples of queue {queue!r}")
    return silence_in([(at, held and count == acks) for at, held, count in samples.points()])
