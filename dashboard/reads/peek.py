"""Peek: look at the first ready messages of a queue, decoded for a person, and put them back.

Payloads are shown as pretty JSON, as text, or as hex when binary, cut to a few kilobytes, and
always as plain text: a payload is data to read, never markup to render.
"""

import base64
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from dashboard.broker.models import QueueInfo, parse_all
from dashboard.broker.session import Session
from dashboard.broker.versions import BrokerVersion
from dashboard.errors import ServerError, WarrenError
from dashboard.reads.models import TenantRow

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
    "On a quorum queue each peek also counts as a delivery: it raises the message's "
    "x-delivery-count toward the queue's delivery limit, past which the broker dead-letters or "
    "drops it."
)


class ConfirmationRequired(WarrenError):
    """The action is allowed but has a cost the user must accept first."""


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


def peek(session: Session, queue: str, count: int, confirmed: bool = False) -> PeekResult:
    """Up to `count` ready messages of `queue`, requeued. A quorum queue needs `confirmed`."""
    client, vhost = session.client, session.vhost
    if not 1 <= count <= MAX_COUNT:
        raise WarrenError(f"Peek shows 1 to {MAX_COUNT} messages; {count} is out of range.")
    raw_info = client.get_queue(
        vhost, queue, {"columns": "name,vhost,type,arguments,effective_policy_definition"}
    )
    info = parse_all(QueueInfo, [raw_info], f"queue {queue!r}")[0]
    if _counts_as_quorum(raw_info) and not confirmed:
        raise ConfirmationRequired(
            f"Queue {queue!r} is a quorum queue. {QUORUM_NOTICE} "
            f"{delivery_limit_sentence(info, client.broker_version())} Confirm to peek anyway."
        )
    raw = client.get_messages(vhost, queue, count, FETCH_BYTES)
    try:
        messages = [decode_message(position, item) for position, item in enumerate(raw, start=1)]
    except (KeyError, TypeError, ValueError):
        raise ServerError(
            f"Warren could not read the messages of queue {queue!r}: the answer does not have "
            "the expected shape."
        ) from None
    return PeekResult(vhost=vhost, queue=queue, queue_type=info.type, messages=messages)


def may_need_confirmation(session: Session, row: TenantRow) -> bool:
    """Whether peeking at the row's queue or its dead-letter queue may ask for the quorum
    confirmation. The row knows its queue's type; the dead-letter queue's costs one small
    request. When the broker cannot say, yes: peek checks again and asks only if it must."""
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
    return _counts_as_quorum(raw_info)


def _counts_as_quorum(raw_info: dict) -> bool:
    # A type the broker did not state is treated as quorum: the warning errs on the safe side.
    return raw_info.get("type", "quorum") == "quorum"


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


def decode_message(position: int, item: dict) -> PeekedMessage:
    """One message as the management API gives it (any properties and headers a publisher set),
    decoded for a person."""
    properties = dict(item.get("properties") or {})
    headers = dict(properties.pop("headers", None) or {})
    deaths = _deaths(headers.pop("x-death", None))
    payload = base64.b64decode(item["payload"]) if item.get("payload") else b""
    size = int(item.get("payload_bytes", len(payload)))
    kind, shown, cut = render_payload(payload, size)
    return PeekedMessage(
        position=position,
        exchange=item.get("exchange", ""),
        routing_key=item.get("routing_key", ""),
        redelivered=bool(item.get("redelivered")),
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
