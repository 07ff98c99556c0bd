"""What a queue does by its own rules with messages an action writes into it, said before the
action runs: a length limit (`x-max-length`, `x-max-length-bytes`, by argument or policy) with
its overflow behaviour, a message TTL, and where its dead letters go. A limit in bytes is
planned for at the incoming messages' average size, so its numbers are "about".

A length limit counts ready messages. Past it, `drop-head` (the default) pushes the oldest ready
messages out, dead-lettered where the queue has a dead-letter exchange and lost where it has
none; `reject-publish` refuses what is published into it (a move stops, the originals stay where
they were); `reject-publish-dlx` refuses it and dead-letters it too. Messages a closed channel
returns are no publishes: they go back to the head of their queue, so past the limit they are
the oldest, and drop-head pushes them out first, while reject-publish lets the queue go over
its limit (both measured on 3.10 and 4.0). A message TTL expires what nobody takes in time.
"""

from typing import Literal

from pydantic import BaseModel

from dashboard.actions.audit import count
from dashboard.broker.models import QueueInfo
from dashboard.broker.session import Session
from dashboard.errors import WarrenError
from dashboard.reads.queue_detail import queue_settings

Overflow = Literal["drop-head", "reject-publish", "reject-publish-dlx"]


class QueueRules(BaseModel):
    queue: str
    ready: int
    max_length: int | None = None
    max_length_bytes: int | None = None
    # The bytes of its ready messages, from the broker's statistics (up to 5 s old), asked only
    # when it has a limit in bytes.
    ready_bytes: int | None = None
    overflow: Overflow = "drop-head"
    message_ttl_ms: int | None = None
    dead_letter_exchange: str | None = None


class Arrival(BaseModel):
    """What the broker would do with `incoming` messages written into a queue now."""

    queue: str
    incoming: int
    # Past the length limit: pushed out (drop-head) or refused (reject-publish*).
    excess: int
    # Of them, those gone for good: pushed out or refused-and-dead-lettered with no
    # dead-letter exchange to take them.
    lost: int
    sentence: str | None


def queue_rules(session: Session, queue: str, info: QueueInfo | None = None) -> QueueRules:
    """The queue's rules from its arguments and policy (an argument wins; from `info` when
    already read), and its ready count from AMQP."""
    arguments = (info or queue_settings(session, queue)).effective_arguments
    ready, _ = session.queue_counts(queue)
    max_bytes = _number(arguments.get("x-max-length-bytes"))
    return QueueRules(
        queue=queue,
        ready=ready,
        max_length=_number(arguments.get("x-max-length")),
        max_length_bytes=max_bytes,
        ready_bytes=None if max_bytes is None else _ready_bytes(session, queue),
        overflow=arguments.get("x-overflow") or "drop-head",
        message_ttl_ms=_number(arguments.get("x-message-ttl")),
        dead_letter_exchange=arguments.get("x-dead-letter-exchange") or None,
    )


def _ready_bytes(session: Session, queue: str) -> int:
    raw = _columns(session, queue, "message_bytes_ready")
    return int(raw.get("message_bytes_ready") or 0)


def _columns(session: Session, queue: str, columns: str) -> dict:
    """Some of a queue's statistics: none yet ({}) before the broker's first emission for it
    (it then answers a `columns=` GET with an empty list)."""
    raw = session.client.get_queue(session.vhost, queue, {"columns": columns})
    if isinstance(raw, list):
        return raw[0] if raw else {}
    return raw


def arrival_from(
    session: Session, source: str, target: str, incoming: int, info: QueueInfo | None = None
) -> Arrival:
    """`incoming` messages of `source` written into `target`, as its rules stand now (their
    size asked only when the target has a limit in bytes)."""
    rules = queue_rules(session, target, info)
    size = bytes_of(session, source, incoming) if rules.max_length_bytes is not None else None
    return arrival(rules, incoming, incoming_bytes=size)


def way_back(session: Session, source: str, holding: str, incoming: int) -> Arrival:
    """Up to `incoming` messages of `source` that a holding queue sends back to it: into the
    room they left, by the source's rules as they stand (what arrived meanwhile may not fit)."""
    rules = queue_rules(session, source)
    rules.ready = max(0, rules.ready - incoming)
    back = arrival(rules, incoming)
    if back.sentence is not None:
        back.sentence = f"On the way back from holding queue {holding!r}: {back.sentence}"
    return back


def bytes_of(session: Session, queue: str, messages: int) -> int | None:
    """About how many bytes `messages` of `queue` hold, at its average ready size (from the
    broker's statistics); None when it reports none."""
    raw = _columns(session, queue, "messages_ready,message_bytes_ready")
    ready, size = raw.get("messages_ready") or 0, raw.get("message_bytes_ready") or 0
    return round(size / ready * messages) if ready and size else None


def _number(value) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def arrival(
    rules: QueueRules, incoming: int, returned: bool = False, incoming_bytes: int | None = None
) -> Arrival:
    """`incoming` messages (of about `incoming_bytes`, when known) published into the queue (or
    `returned` to it) as its rules stand now, in numbers and one sentence (None when nothing
    happens to them)."""
    room = None if rules.max_length is None else max(0, rules.max_length - rules.ready)
    excess = 0 if room is None else max(0, incoming - room)
    by_bytes = _excess_by_bytes(rules, incoming, incoming_bytes)
    excess = max(excess, by_bytes or 0)
    if returned and rules.overflow != "drop-head":
        excess = 0  # returns are not refused: the queue goes over its limit
    dead_letters = (
        f"dead-lettered to exchange {rules.dead_letter_exchange!r}"
        if rules.dead_letter_exchange
        else "lost (no dead-letter exchange)"
    )
    lost = 0
    words = []
    if excess:
        held = _held_words(rules, by_bytes is not None and by_bytes >= excess)
        if rules.overflow == "drop-head":
            lost = 0 if rules.dead_letter_exchange else excess
            words.append(
                f"{held} with drop-head: the {count(incoming, 'message')} "
                f"{'returned' if returned else 'coming in'} would push the {excess:,} oldest "
                f"out{' (those returned first)' if returned else ''}, {dead_letters}."
            )
        elif rules.overflow == "reject-publish":
            words.append(
                f"{held} with reject-publish: it refuses the {excess:,} past its limit, so the "
                "move stops there and they stay where they are."
            )
        else:
            lost = 0 if rules.dead_letter_exchange else excess
            words.append(
                f"{held} with reject-publish-dlx: it refuses the {excess:,} past its limit and "
                f"they are {dead_letters}; the move stops there, their originals stay."
            )
    if rules.max_length_bytes is not None and incoming_bytes is None and incoming:
        words.append(
            f"{rules.queue!r} holds at most {rules.max_length_bytes:,} bytes: how many of the "
            f"{count(incoming, 'message')} fit depends on their size, which the broker does not "
            "report here."
        )
    if rules.message_ttl_ms is not None:
        words.append(
            f"{rules.queue!r} expires messages not taken within {rules.message_ttl_ms:,} ms: "
            f"{dead_letters}."
        )
    return Arrival(
        queue=rules.queue,
        incoming=incoming,
        excess=excess,
        lost=lost,
        sentence=" ".join(words) or None,
    )


def _excess_by_bytes(rules: QueueRules, incoming: int, incoming_bytes: int | None) -> int | None:
    """How many of the incoming messages would not fit in the queue's limit in bytes, at their
    average size; None without such a limit or sizes."""
    if rules.max_length_bytes is None or not incoming or not incoming_bytes:
        return None
    room = max(0, rules.max_length_bytes - (rules.ready_bytes or 0))
    fitting = int(room // (incoming_bytes / incoming))
    return max(0, incoming - fitting)


def _held_words(rules: QueueRules, by_bytes: bool) -> str:
    if by_bytes:
        return (
            f"{rules.queue!r} holds about {rules.ready_bytes or 0:,} bytes of at most "
            f"{rules.max_length_bytes:,} (at the incoming messages' average size)"
        )
    return f"{rules.queue!r} holds {rules.ready:,} of at most {rules.max_length:,}"


def loss_sentence(lost: int) -> str:
    return f"{count(lost, 'message')} would be lost: refused unless forced."


def refuse_loss(lost: int, force: bool) -> None:
    """Inside an action's audit record: a loss by the target's own rules stops it, unforced."""
    if lost and not force:
        raise WarrenError(
            f"{count(lost, 'message')} would be lost by the queues' own rules: refused "
            "(--force accepts the loss). Nothing was changed."
        )
