"""Typed shapes of what Warren derives from the broker's answers: tenant rows and their totals,
consumer loads and pods, each with the flags an on-call engineer reads."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, computed_field

from dashboard.reads.durations import duration_text


class ConsumerReport(BaseModel):
    """The consumers Warren can see. A user without the `monitoring` (or `administrator`) tag
    is shown only the consumers of its own connections: `own_only` says so."""

    loads: list["ConsumerLoad"]
    own_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """Something an on-call engineer should look at, with the one-line reason. A dataclass like
    TenantRow: a poll at scale makes one for most of 100,000 rows, and as a model each took
    several times as long to build. Models that hold flags validate and dump it as one."""

    kind: str
    reason: str


@dataclass(slots=True, kw_only=True)
class Wait:
    """How long a tenant's ready work has waited, and how soon it would drain (reads/waiting.py).
    A dataclass like TenantRow, which holds it. A poll moves only `as_of`: the seconds and the
    sentence are worked out when read (a poll at scale waits on 86,000 of 100,000 rows)."""

    # "oldest-message": from the timestamp its producer set on the oldest ready message;
    # "backlog": how long the queue has not been without ready messages, from the history.
    measured_by: Literal["oldest-message", "backlog"]
    # The history reaches back no further: the wait may be longer.
    at_least: bool = False
    # At the current ack rate; None: nothing is acked, or no rate is known.
    drain_seconds: float | None = None
    drain: str
    # When it began (epoch seconds): the oldest ready message's timestamp, or the backlog's
    # start.
    since: float
    # The poll's moment, which the wait is told as of.
    as_of: Annotated[float, Field(exclude=True)]

    @computed_field
    @property
    def seconds(self) -> float:
        # A producer's clock may run ahead of ours.
        return max(0.0, self.as_of - self.since)

    @computed_field
    @property
    def text(self) -> str:
        waited = duration_text(self.seconds)
        if self.measured_by == "oldest-message":
            return f"oldest ready message waiting {waited}"
        return f"ready messages waiting {'at least ' if self.at_least else ''}{waited}"


@dataclass(slots=True, kw_only=True)
class TenantRow:
    """One tenant binding: routing key `tenant` on the tenant exchange delivers to `queue`.

    A dataclass, not a model: an overview holds one per tenant binding, and as a model each took
    3 KB (50,005 bindings: 161 MB a poll) and three times as long to build. It is built from the
    broker's validated answers (reads/overview.py) and dumped like a model (`record`)."""

    tenant: str
    vhost: str
    queue: str
    ready: int
    unacked: int
    total: int
    consumers: int
    publish_rate: float | None = None
    deliver_rate: float | None = None
    ack_rate: float | None = None
    consumer_capacity: float | None = None
    queue_type: str
    state: str | None = None
    # Other tenant ids bound to the same queue: its counts are shared with those rows.
    shares_queue_with: list[str] = field(default_factory=list)
    dead_letter_queue: str | None = None
    dead_letters: int | None = None
    # Cumulative acks of the queue, for telling "no acks over a window" from history; None
    # where the statistics were not read (see reads/overview.py), like the rates.
    acks: int | None = 0
    # Cumulative redeliveries (returns after a reject, a closed channel, a timeout).
    redeliveries: int | None = 0
    # The AMQP timestamp (epoch seconds) of the oldest ready message, where the broker reports
    # one: classic queues whose producers set the property.
    head_timestamp: float | None = None
    wait: Wait | None = None
    # False while the broker may not have counted a new queue yet (see QueueInfo.counted): its
    # 0s are not recorded as history.
    counted: bool = True
    flags: list[Flag] = field(default_factory=list)

    def record(self, mode: Literal["python", "json"] = "python") -> dict:
        """The row as a dict (flags and wait too), as a model's `model_dump` gives it."""
        return _TENANT_ROW.dump_python(self, mode=mode)


_TENANT_ROW = TypeAdapter(TenantRow)
_TENANT_ROWS = TypeAdapter(list[TenantRow])


def rows_json(rows: list[TenantRow]) -> str:
    """The rows as one JSON array, as their records would be, serialised in pydantic's core at
    once: dumping each row to a dict and encoding the list took 6x as long at 10,000 rows,
    most of a one-shot's own work. Compact: no space after the separators."""
    return _TENANT_ROWS.dump_json(rows).decode()


class Totals(BaseModel):
    """Sums over distinct queues, so a queue bound under two tenant ids counts once."""

    tenants: int
    queues: int
    ready: int
    unacked: int
    total: int
    consumers: int


class CapturedId(BaseModel):
    """Captured messages of one routing key (tenant id)."""

    routing_key: str
    messages: int
    # The queue a tenant binding with this routing key leads to now: onboarded since.
    bound_to: str | None = None


class Unrouted(BaseModel):
    """What the tenant exchange could not route (reads/unrouted.py)."""

    exchange: str
    # Dropped for want of a binding since the broker's statistics began.
    dropped: int
    # The policy in force on the tenant exchange (Warren's capture, or another).
    policy: str | None
    capturing: bool
    capture_queue: str
    # Messages in the capture queue; None when there is none.
    captured: int | None = None
    # The captured messages by routing key, most first.
    ids: list[CapturedId] = Field(default_factory=list)


class Overview(BaseModel):
    vhost: str
    exchange: str
    # A poll reuses the rows whose inputs stood still (reads/overview.py `LastRows`): the same
    # objects as in its last overview, their wait and flags brought up to date in place.
    rows: list[TenantRow]
    totals: Totals
    fetched_at: datetime
    # Where the counts came from: the management API's queue list, or the metrics endpoint
    # (then rates and settings are from the last topology listing).
    counts_from: Literal["management", "metrics"] = "management"
    # When the statistics (rates, ack and redelivery counters, the oldest message's timestamp)
    # were listed; None: not read.
    statistics_at: datetime | None = None
    # Read by the console's and the watcher's polls; None where nobody read it.
    unrouted: Unrouted | None = None


class ConsumerLoad(BaseModel):
    """One consumer joined to its channel and connection: who holds how much of which queue."""

    connection: str
    connection_id: str
    channel: str
    consumer_tag: str
    queue: str
    vhost: str
    tenants: list[str]
    prefetch: int
    # False while its pod connected only seconds ago: its limit may not be set yet (Celery sets
    # one on the whole channel after it starts consuming); "unlimited" is not flagged then.
    prefetch_known: bool = True
    unacked: int
    # Unacked is counted per channel: when consumers share one, they share the count, and it
    # is measured against the channel's limit (their prefetches summed, or a global prefetch).
    channel_consumers: int
    channel_prefetch: int
    load: float | None
    ack_rate: float | None
    ack_required: bool
    idle_since: datetime | None
    # The channel's cumulative acks, and since when they have not changed (see
    # reads/silence.py): `at_least` when the evidence goes back no further; `no_ack_for` says
    # how long, as every face shows it, while it holds messages. None while it acks.
    acks: int = 0
    acks_unchanged_since: datetime | None = None
    acks_unchanged_at_least: bool = False
    no_ack_for: str | None = None
    # While it holds messages: the consumer timeout of its queue, in seconds.
    timeout_seconds: float | None = None
    # False unless its queue is a tenant queue or one their dead letters go to: a worker
    # framework's control and event queues, another application's. Never flagged.
    work: bool = True
    flags: list[Flag] = Field(default_factory=list)


class PodLoad(BaseModel):
    """One connection (a worker pod) summed over its consumers: unacked and prefetch are counted
    once per channel, since consumers sharing a channel share its count and its limit."""

    connection: str
    connection_id: str
    consumers: int
    unacked: int
    # Summed over its channels; a channel without a limit adds 0 (the consumers' own flags say
    # "unlimited-prefetch").
    prefetch: int
    queues: list[str]
    flags: list[Flag] = Field(default_factory=list)


ConsumerReport.model_rebuild()
