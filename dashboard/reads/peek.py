"""Peek: look at the first ready messages of a queue, decoded for a person, and put them back.
What a peek costs is planned here; on a quorum queue it is a change, which actions/peek.py makes.

Payloads are shown as pretty JSON, as text, or as hex when binary, cut to a few kilobytes, and
always as plain text: a payload is data to read, never markup to render.
"""

import base64
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from dashboard.broker.models import QueueInfo
from dashboard.broker.session import Session
from dashboard.broker.versions import BrokerVersion
from dashboard.errors import ServerError, WarrenError
from dashboard.reads.masking import Masking, masking_of
from dashboard.reads.models import TenantRow
from dashboard.reads.queue_detail import queue_settings

MAX_COUNT = 100
# The broker cuts each payload to this many bytes before sending it (a 10 MB payload stays home).
FETCH_BYTES = 65_536
SHOW_CHARS = 4_000
HEX_BYTES = 256

PEEK_NOTICE = (
    "Peeking takes each message from the queue and puts it straight back: it stays in the "
    "queue, is marked redelivered, and is briefly unavailable to consumers."
)
QUORUM_NOTICE = (
    "On a quorum queue each {verb} also counts as a delivery: it raises the message's "
    "x-delivery-count toward the queue's delivery limit, past which the broker dead-letters or "
    "drops it. So a {verb} there is a change: only users who may act can do it, and it is "
    "audited."
)


class PeekPlan(BaseModel):
    """What peeking a queue costs, known before any message is touched."""

    vhost: str
    queue: str
    queue_type: str
    # The limit in force on a quorum queue (argument, policy, or the version's default).
    delivery_limit: int | None
    limit_sentence: str
    # Where a message past its limit goes: the queue's dead-letter exchange ("" is the default
    # exchange), or None when the broker drops it.
    dead_letter_exchange: str | None

    @property
    def counts_deliveries(self) -> bool:
        return self.queue_type == "quorum"

    @property
    def over_limit_fate(self) -> str:
        if self.dead_letter_exchange is None:
            return "dropped for good (the queue has no dead-letter exchange)"
        return f"dead-lettered through exchange {self.dead_letter_exchange or '(default)'!r}"

    @property
    def sentence(self) -> str:
        return PEEK_NOTICE if not self.counts_deliveries else self.cost_sentence("peek")

    def cost_sentence(self, verb: str) -> str:
        """What a `verb` (peek, browse, export) costs on this quorum queue."""
        cost = (
            f" A message already delivered {self.delivery_limit} times is "
            f"{self.over_limit_fate} when the {verb} puts it back; how many are that close "
            "shows only once they are delivered, and the result says."
            if self.delivery_limit is not None
            else ""
        )
        notice = QUORUM_NOTICE.format(verb=verb)
        return f"Queue {self.queue!r} is a quorum queue. {notice} {self.limit_sentence}{cost}"


class Death(BaseModel):
    """One `x-death` entry: the broker's record of a dead-lettering."""

    reason: str
    count: int
    queue: str
    exchange: str
    routing_keys: list[str]
    time: datetime | None


class PeekedMessage(BaseModel):
    position: int
    exchange: str
    routing_key: str
    redelivered: bool
    # Quorum queues: how many times the message was returned to the queue (peeks included).
    delivery_count: int | None
    properties: dict
    headers: dict
    deaths: list[Death]
    size: int
    kind: Literal["json", "text", "binary", "empty"]
    shown: str
    truncated: bool


class PeekResult(BaseModel):
    vhost: str
    queue: str
    queue_type: str
    messages: list[PeekedMessage]
    # Quorum queues with a delivery limit: the messages this peek put back past it (gone to
    # their fate), those it left one delivery short of it, and the ready count afterwards.
    past_limit: int = 0
    at_limit: int = 0
    ready_after: int | None = None


def plan_peek(session: Session, queue: str) -> PeekPlan:
    """The cost of peeking `queue`, from its type, arguments and policy."""
    info = queue_settings(session, queue)
    version = session.broker_version()
    arguments = info.effective_arguments
    dead_letter_exchange = arguments.get("x-dead-letter-exchange")
    return PeekPlan(
        vhost=session.vhost,
        queue=queue,
        # A type the broker did not state is taken as quorum: the cost errs on the safe side.
        queue_type=info.type if "type" in info.model_fields_set else "quorum",
        delivery_limit=_delivery_limit(info, version),
        limit_sentence=delivery_limit_sentence(info, version),
        dead_letter_exchange=None if dead_letter_exchange is None else str(dead_letter_exchange),
    )


def fetch_messages(session: Session, plan: PeekPlan, count: int) -> PeekResult:
    """Up to `count` ready messages of the plan's queue, requeued (the caller decided that the
    cost is accepted)."""
    if not 1 <= count <= MAX_COUNT:
        raise WarrenError(f"Peek shows 1 to {MAX_COUNT} messages; {count} is out of range.")
    raw = session.client.get_messages(session.vhost, plan.queue, count, FETCH_BYTES)
    try:
        masking = masking_of(session.settings)
        messages = [
            decode_message(position, item, masking) for position, item in enumerate(raw, start=1)
        ]
    except (KeyError, TypeError, ValueError):
        raise ServerError(
            f"Warren could not read the messages of queue {plan.queue!r}: the answer does not "
            "have the expected shape."
        ) from None
    return PeekResult(
        vhost=plan.vhost, queue=plan.queue, queue_type=plan.queue_type, messages=messages
    )


def may_need_confirmation(session: Session, row: TenantRow) -> bool:
    """Whether peeking at the row's queue or its dead-letter queue may cost deliveries. The row
    knows its queue's type; the dead-letter queue's costs one small request. When the broker
    cannot say, yes: the peek plans again and asks only if it must."""
    if row.queue_type == "quorum":
        return True
    if row.dead_letter_queue is None:
        return False
    try:
        raw_info = session.client.get_queue(
            session.vhost, row.dead_letter_queue, {"columns": "type"}
        )
    except WarrenError:
        return True
    return raw_info.get("type", "quorum") == "quorum"


def _delivery_limit(info: QueueInfo, version: BrokerVersion) -> int | None:
    if info.type != "quorum":
        return None
    limit = info.effective_arguments.get("x-delivery-limit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        return limit
    return version.quorum_delivery_limit


def delivery_limit_sentence(info: QueueInfo, version: BrokerVersion) -> str:
    """A quorum queue's delivery limit: set by an argument or a policy, else the version's."""
    limit = info.effective_arguments.get("x-delivery-limit")
    if limit is not None:
        return f"Its delivery limit is {limit}."
    if version.quorum_delivery_limit is not None:
        return (
            f"Its delivery limit is {version.quorum_delivery_limit}, RabbitMQ "
            f"{version.text}'s default: none is set."
        )
    return f"It has no delivery limit (none is set, and RabbitMQ {version.text} has no default)."


def decode_message(position: int, item: dict, masking: Masking) -> PeekedMessage:
    """One message as the management API gives it (any properties and headers a publisher set),
    decoded for a person, masked."""
    payload = base64.b64decode(item["payload"]) if item.get("payload") else b""
    return message_of(
        position,
        exchange=item.get("exchange", ""),
        routing_key=item.get("routing_key", ""),
        redelivered=bool(item.get("redelivered")),
        properties=dict(item.get("properties") or {}),
        payload=payload,
        size=int(item.get("payload_bytes", len(payload))),
        masking=masking,
    )


def message_of(
    position: int,
    exchange: str,
    routing_key: str,
    redelivered: bool,
    properties: dict,
    payload: bytes,
    size: int,
    masking: Masking,
) -> PeekedMessage:
    """A message decoded for a person, masked: `payload` is the first bytes of `size`."""
    headers = masking.masked_headers(properties.pop("headers", None))
    properties = masking.masked_value(properties)
    deaths = _deaths(headers.pop("x-death", None))
    complete = len(payload) >= size
    masked = masking.masked_body(payload, complete)
    kind, shown, cut = render_payload(masked, len(masked) if complete else size)
    return PeekedMessage(
        position=position,
        exchange=exchange,
        routing_key=routing_key,
        redelivered=redelivered,
        delivery_count=_int_or_none(headers.get("x-delivery-count")),
        properties=properties,
        headers=headers,
        deaths=deaths,
        size=size,
        kind=kind,
        shown=shown,
        truncated=cut,
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _deaths(value: object) -> list[Death]:
    """The broker's `x-death` list; a publisher can set any header, so entries that are not
    death records are left out rather than failing the peek."""
    if not isinstance(value, list):
        return []
    deaths = []
    for entry in value:
        try:
            deaths.append(_death(entry))
        # OverflowError and OSError: a `time` or `count` no clock or integer can hold.
        except (AttributeError, TypeError, ValueError, OverflowError, OSError):
            continue
    return deaths


def _death(entry: dict) -> Death:
    stamp = entry.get("time")
    return Death(
        reason=str(entry.get("reason", "")),
        count=int(entry.get("count", 0)),
        queue=str(entry.get("queue", "")),
        exchange=str(entry.get("exchange", "")),
        routing_keys=[str(key) for key in entry.get("routing-keys", [])],
        time=datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int | float) else None,
    )


def render_payload(payload: bytes, size: int) -> tuple[str, str, bool]:
    """(kind, text to show, whether it was cut) for `payload`, the first bytes of `size`."""
    if size == 0:
        return "empty", "", False
    complete = len(payload) >= size
    text = _as_text(payload, complete)
    if text is None:
        shown = _hex(payload[:HEX_BYTES])
        return "binary", shown, size > min(len(payload), HEX_BYTES)
    if complete:
        try:
            pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            return "json", pretty[:SHOW_CHARS], len(pretty) > SHOW_CHARS
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to parse
            pass
    return "text", text[:SHOW_CHARS], not complete or len(text) > SHOW_CHARS


def _as_text(payload: bytes, complete: bool) -> str | None:
    """The payload as text when it is UTF-8 without control characters (tabs and newlines
    aside); a character cut in half at the end of a truncated payload is forgiven."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        if complete or exc.reason != "unexpected end of data":
            return None
        text = payload[: exc.start].decode("utf-8")
    if any(ord(char) < 32 and char not in "\t\n\r" for char in text):
        return None
    return text


def _hex(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        printable = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {printable}")
    return "\n".join(lines)
