"""Dead letters at incident scale: look through a whole queue in one pass (broker/sweep.py),
summarised by what killed each message and where, a page of those a selection matches, and the
same selection written out as JSON lines. Every message stays in the queue, in its order.

The audited ways in are actions/browse.py: a pass shows payloads, and on a quorum queue it
counts a delivery against each message.
"""

import base64
import json
from collections import Counter
from datetime import UTC, datetime
from typing import IO

from pika.spec import BasicProperties
from pydantic import BaseModel, Field

from dashboard.broker.session import Session
from dashboard.broker.sweep import Delivery, Sweep
from dashboard.errors import WarrenError
from dashboard.reads.masking import Masking, masking_of
from dashboard.reads.peek import PeekedMessage, PeekPlan, message_of
from dashboard.reads.selection import Selection, first_death, redrives_of, text, texts

PAGE_MOST = 500
# Each bar of the first-death chart: one minute.
MINUTE = "%Y-%m-%d %H:%M"
NO_DEATH = "(no x-death)"
IDS_MOST = 10_000


class Tally(BaseModel):
    """Counts of the messages a pass matched: by the reason, queue, tenant (routing key) and
    minute of their first death, by a header's value, and how many died again after Warren
    redrove them."""

    by_reason: dict[str, int] = Field(default_factory=dict)
    by_queue: dict[str, int] = Field(default_factory=dict)
    by_tenant: dict[str, int] = Field(default_factory=dict)
    by_minute: dict[str, int] = Field(default_factory=dict)
    header: str | None = None
    by_header: dict[str, int] = Field(default_factory=dict)
    redriven: int = 0


class Browse(BaseModel):
    vhost: str
    queue: str
    queue_type: str
    selection: Selection
    # Messages the pass went through, and those the selection matched.
    seen: int
    matching: int
    tally: Tally
    # The page of matching messages, from `offset` (0: the first match).
    offset: int
    page: list[PeekedMessage]
    # The message ids of every match, for an action on them (the first 10,000).
    ids: list[str]
    # Quorum queues with a delivery limit: matches that came at the limit, past it once put back.
    past_limit: int = 0
    stopped: str | None = None
    seconds: float = 0.0


class _Counting:
    """What one pass keeps of each message: counts, the page's messages, the ids."""

    def __init__(
        self,
        selection: Selection,
        masking: Masking,
        offset: int,
        size: int,
        header: str | None,
        limit: int | None,
    ):
        self.selection, self.masking = selection, masking
        self.offset, self.size, self.header = offset, size, header
        self.delivery_limit = limit
        self.reasons, self.queues, self.tenants = Counter(), Counter(), Counter()
        self.minutes, self.values = Counter(), Counter()
        self.redriven = self.matching = self.past_limit = 0
        self.page: list[PeekedMessage] = []
        self.ids: list[str] = []

    def visit(self, delivery: Delivery) -> bool:
        properties = delivery.properties
        masking = self.masking
        if not self.selection.matches(masking, properties, delivery.routing_key, delivery.body):
            return False
        self.matching += 1
        self._count(masking.masked_headers(properties.headers))
        if properties.message_id is not None and len(self.ids) < IDS_MOST:
            # As the page shows them, and as a selection of them compares them.
            self.ids.append(masking.masked_value(properties.message_id))
        if self.offset < self.matching <= self.offset + self.size:
            self.page.append(letter_of(self.matching, delivery, masking))
        return False

    def _count(self, headers: dict) -> None:
        death = first_death(headers)
        self.reasons[text(death.get("reason")) or NO_DEATH] += 1
        self.queues[text(death.get("queue")) or NO_DEATH] += 1
        for tenant in texts(death.get("routing-keys", [])) or [NO_DEATH]:
            self.tenants[tenant] += 1
        stamp = death.get("time")
        if isinstance(stamp, datetime):
            self.minutes[stamp.astimezone(UTC).strftime(MINUTE)] += 1
        if self.header is not None:
            self.values[text(headers.get(self.header)) or "(not set)"] += 1
        self.redriven += redrives_of(headers) > 0
        delivered = headers.get("x-delivery-count")
        limit = self.delivery_limit
        if limit is not None and isinstance(delivered, int) and delivered >= limit:
            self.past_limit += 1

    def tally(self) -> Tally:
        return Tally(
            by_reason=dict(self.reasons.most_common()),
            by_queue=dict(self.queues.most_common()),
            by_tenant=dict(self.tenants.most_common()),
            by_minute=dict(sorted(self.minutes.items())),
            header=self.header,
            by_header=dict(self.values.most_common()),
            redriven=self.redriven,
        )


def browse_letters(
    session: Session,
    plan: PeekPlan,
    selection: Selection,
    offset: int = 0,
    size: int = 50,
    header: str | None = None,
) -> Browse:
    """One pass over the plan's queue (unaudited: actions/browse.py is the way in)."""
    if not 1 <= size <= PAGE_MOST:
        raise WarrenError(f"A page shows 1 to {PAGE_MOST} messages; {size} is out of range.")
    if offset < 0:
        raise WarrenError(f"A page starts at match 0 or later; {offset} is out of range.")
    masking = masking_of(session.settings)
    counting = _Counting(selection, masking, offset, size, header, plan.delivery_limit)
    ready = session.ready_count(plan.queue)
    result = Sweep(session, plan.queue, ready, counting.visit).run()
    return Browse(
        vhost=session.vhost,
        queue=plan.queue,
        queue_type=plan.queue_type,
        selection=selection,
        seen=result.seen,
        matching=counting.matching,
        tally=counting.tally(),
        offset=offset,
        page=counting.page,
        ids=counting.ids,
        past_limit=counting.past_limit,
        stopped=None if result.seen >= ready else result.stopped,
        seconds=result.seconds,
    )


def letter_of(position: int, delivery: Delivery, masking: Masking) -> PeekedMessage:
    properties = properties_of(delivery.properties)
    return message_of(
        position,
        exchange="",
        routing_key=delivery.routing_key,
        redelivered=True,
        properties=properties,
        payload=delivery.body,
        size=len(delivery.body),
        masking=masking,
    )


def properties_of(properties: BasicProperties) -> dict:
    """The properties a publisher set, as plain JSON values (see `plain`)."""
    return {key: plain(value) for key, value in vars(properties).items() if value is not None}


def plain(value):
    """An AMQP field value as JSON: a timestamp as seconds since the epoch, text as text, other
    bytes as {"base64": ...}, a decimal as its text."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def export_line(delivery: Delivery, masking: Masking) -> str:
    """One message as a JSON line, masked: routing key, properties (headers inside), the body
    as text where it is UTF-8, else base64."""
    record = {
        "routing_key": delivery.routing_key,
        "properties": properties_of(masking.masked_properties(delivery.properties)),
    }
    body = masking.masked_body(delivery.body)
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(body).decode()
    return json.dumps(record, ensure_ascii=False)


def export_letters(session: Session, queue: str, selection: Selection, out: IO[str]) -> int:
    """The messages of `queue` the selection matches, one JSON line each, to `out`; how many
    (unaudited: actions/browse.py is the way in)."""
    written = [0]
    masking = masking_of(session.settings)

    def visit(delivery: Delivery) -> bool:
        if selection.matches(masking, delivery.properties, delivery.routing_key, delivery.body):
            out.write(export_line(delivery, masking) + "\n")
            written[0] += 1
        return False

    Sweep(session, queue, session.ready_count(queue), visit).run()
    return written[0]
