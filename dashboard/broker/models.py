"""Typed shapes of what the management API returns: the fields Warren reads, nothing derived."""

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.dataclasses import dataclass

from dashboard.errors import ServerError

M = TypeVar("M")


def parse_all(model: type[M], items: object, what: str) -> list[M]:
    """Validate a list the API returned; an answer of another shape is a ServerError sentence."""
    try:
        return TypeAdapter(list[model]).validate_python(items)
    except ValidationError:
        raise _unexpected(what) from None


def parse_each(model: type[M], what: str) -> Callable[[object], M]:
    """Validates one item of a list the API returns, as it is read (`ManagementClient.get_each`);
    an item of another shape is a ServerError sentence."""
    # pydantic-core's validator itself: the adapter's method around it is one more Python call
    # per item (a third of a binding's validation).
    validate = TypeAdapter(model).validator.validate_python

    def parse(item: object) -> M:
        try:
            return validate(item)
        except ValidationError:
            raise _unexpected(what) from None

    return parse


def _unexpected(what: str) -> ServerError:
    return ServerError(
        f"Warren could not read {what}: the answer does not have the expected shape."
    )


class _ApiModel(BaseModel):
    # The API adds fields between versions; Warren reads the ones it names and ignores the rest.
    model_config = ConfigDict(extra="ignore")


class Sample(_ApiModel):
    sample: int
    # Milliseconds since the epoch.
    timestamp: int


class Rate(_ApiModel):
    rate: float = 0.0
    # Newest first; only when asked for (`msg_rates_age`, `lengths_age`).
    samples: list[Sample] = Field(default_factory=list)

    def by_second(self) -> dict[float, int]:
        return {item.timestamp / 1000: item.sample for item in self.samples}


class MessageStats(_ApiModel):
    # Absent until the queue's first ack (its first redelivery).
    ack: int = 0
    redeliver: int = 0
    publish_details: Rate | None = None
    deliver_get_details: Rate | None = None
    ack_details: Rate | None = None


class ExchangeStats(_ApiModel):
    # Messages published into the exchange, and routed out of it to queues (or to its alternate
    # exchange): since the broker's statistics began.
    publish_in: int = 0
    publish_out: int = 0


class ExchangeInfo(_ApiModel):
    """One exchange as `GET /api/exchanges/{vhost}/{name}` returns it."""

    name: str
    type: str
    arguments: dict = Field(default_factory=dict)
    # The name of the policy in force on it, if any.
    policy: str | None = None
    message_stats: ExchangeStats | None = None

    _no_stats = field_validator("message_stats", mode="before")(lambda value: value or None)
    _no_policy = field_validator("policy", mode="before")(lambda value: value or None)


class QueueInfo(_ApiModel):
    """One queue as `GET /api/queues/{vhost}?columns=...` returns it.

    Counts are absent until the broker's first stats emission for a new queue: they read 0.
    """

    name: str
    vhost: str
    type: str = "classic"
    state: str | None = None
    messages_ready: int = 0
    messages_unacknowledged: int = 0
    messages: int = 0
    consumers: int = 0
    arguments: dict = Field(default_factory=dict)
    effective_policy_definition: dict = Field(default_factory=dict)
    # The name of the policy in force (a listing without statistics gives only this).
    policy: str | None = None
    # Renamed in 3.11; both are sent by the versions Warren supports.
    consumer_capacity: float | None = None
    consumer_utilisation: float | None = None
    message_stats: MessageStats | None = None
    # The AMQP timestamp of the queue's head message, when its producer set one (classic only).
    head_message_timestamp: float | None = None
    # Quorum queues: the node of the leader, and of every member and every member online.
    leader: str | None = None
    members: list[str] = Field(default_factory=list)
    online: list[str] = Field(default_factory=list)

    # With `columns=`, a queue that has none of the asked-for stats sends `[]`.
    _no_stats = field_validator("message_stats", mode="before")(lambda value: value or None)

    _no_timestamp = field_validator("head_message_timestamp", mode="before")(
        lambda value: value or None
    )

    _no_policy = field_validator("effective_policy_definition", mode="before")(
        lambda value: value or {}
    )

    @property
    def counted(self) -> bool:
        """Whether the broker has counted the queue yet. A new queue reads 0 (or has no counts)
        until the first statistics after its first messages, which bring its message stats:
        an empty queue with none may be one (or was never used)."""
        return "messages" in self.model_fields_set and bool(self.messages or self.message_stats)

    @property
    def effective_arguments(self) -> dict:
        """Arguments with what a policy sets filled in (`dead-letter-exchange` as
        `x-dead-letter-exchange`); an argument given at declaration wins."""
        from_policy = {f"x-{key}": value for key, value in self.effective_policy_definition.items()}
        return from_policy | self.arguments

    def effective(self, argument: str) -> object | None:
        """One of `effective_arguments`, without building them all (a poll asks 10,000s)."""
        if argument in self.arguments:
            return self.arguments[argument]
        return self.effective_policy_definition.get(argument.removeprefix("x-"))

    @property
    def capacity(self) -> float | None:
        return (
            self.consumer_capacity
            if self.consumer_capacity is not None
            else (self.consumer_utilisation)
        )


# What the overview reads of a queue's arguments and policy: where its dead letters go.
DEAD_LETTER_ARGUMENTS = ("x-dead-letter-exchange", "x-dead-letter-routing-key")
DEAD_LETTER_KEYS = tuple(argument.removeprefix("x-") for argument in DEAD_LETTER_ARGUMENTS)

# The listings below are slotted dataclasses, not models like QueueInfo: a poll holds one per
# queue of the vhost, and at 100,000 queues the models of a listing with statistics took
# 350 MB (these take 60 MB).
# By field name too: ListedQueue reads some fields under the broker's names (aliases).
_LISTED = ConfigDict(extra="ignore", populate_by_name=True)


@dataclass(slots=True, frozen=True, config=_LISTED)
class ListedRate:
    rate: float = 0.0


@dataclass(slots=True, frozen=True, config=_LISTED)
class ListedStats:
    """A listed queue's `message_stats`, the overview's part of them."""

    ack: int = 0
    redeliver: int = 0
    publish_details: ListedRate | None = None
    deliver_get_details: ListedRate | None = None
    ack_details: ListedRate | None = None


def _sent(value: Any) -> bool:
    # Under the broker's name (`messages`), any count, 0 or null, says it was sent; given by
    # field name, `has_counts` is itself.
    return value is not False


def _or_none(value: Any) -> Any:
    # With `columns=`, a queue that has none of the asked-for stats sends `[]`.
    return value or None


def _only(keys: tuple[str, ...]) -> BeforeValidator:
    """Of settings (arguments, a policy's definition), `keys` only; None where it has none."""

    def only(settings: Any) -> Any:
        if not isinstance(settings, dict):
            return settings or None
        return {key: settings[key] for key in keys if key in settings} or None

    return BeforeValidator(only)


# The same few words in every queue: one string each, not one per queue. The builtin itself,
# after the string is validated: a Python function of ours per field was a sixth of a listing's
# validation.
_Repeated = Annotated[str, AfterValidator(sys.intern)]


@dataclass(slots=True, config=_LISTED)
class ListedQueue:
    """One queue of `GET /api/queues/{vhost}?columns=...` (with statistics or without), as far
    as the overview reads it: QueueInfo's names, where the overview reads them.

    What it makes of the broker's fields is said field by field (aliases, field validators), so
    that pydantic-core reads a listing's items as they are: a model validator that built each
    item anew took two fifths of validating a listing (without statistics)."""

    name: str
    type: _Repeated = "classic"
    state: _Repeated | None = None
    messages_ready: int = 0
    messages_unacknowledged: int = 0
    messages: int = 0
    consumers: int = 0
    # Whether the listing sent counts (a new queue has none until the broker's first stats):
    # whether it sent `messages`, whatever its value.
    has_counts: Annotated[bool, BeforeValidator(_sent)] = Field(False, validation_alias="messages")
    # Renamed `consumer_capacity` in 3.11 (see `capacity`).
    consumer_capacity: float | None = None
    consumer_utilisation: float | None = None
    message_stats: Annotated[ListedStats | None, BeforeValidator(_or_none)] = None
    head_message_timestamp: Annotated[float | None, BeforeValidator(_or_none)] = None
    # The name of the policy in force.
    policy: _Repeated | None = None
    # Of its `arguments`, the dead-letter ones (None: neither)...
    dead_letter_arguments: Annotated[dict[str, Any] | None, _only(DEAD_LETTER_ARGUMENTS)] = Field(
        None, validation_alias="arguments"
    )
    # ...and of what its policy sets, the dead-letter keys: from a listing with statistics (its
    # `effective_policy_definition`), else filled in by the overview from one queue per policy.
    dead_letter_policy: Annotated[dict[str, Any] | None, _only(DEAD_LETTER_KEYS)] = Field(
        None, validation_alias="effective_policy_definition"
    )

    @property
    def counted(self) -> bool:
        """As QueueInfo.counted: whether the broker has counted the queue yet."""
        return self.has_counts and bool(self.messages or self.message_stats)

    @property
    def capacity(self) -> float | None:
        """As QueueInfo.capacity: `consumer_capacity`, else (before 3.11, or sent as null)
        `consumer_utilisation`."""
        if self.consumer_capacity is not None:
            return self.consumer_capacity
        return self.consumer_utilisation

    def effective(self, argument: str) -> object | None:
        """A dead-letter argument (`DEAD_LETTER_ARGUMENTS`) in force: as declared, else as its
        policy sets it."""
        if self.dead_letter_arguments and argument in self.dead_letter_arguments:
            return self.dead_letter_arguments[argument]
        return (self.dead_letter_policy or {}).get(argument.removeprefix("x-"))


class NodeInfo(_ApiModel):
    """One cluster node as `GET /api/nodes` returns it. A node that is down reports its name
    and `running: false` only."""

    name: str
    running: bool = False
    uptime: int | None = None  # milliseconds
    mem_used: int | None = None
    mem_limit: int | None = None  # the high watermark
    mem_alarm: bool = False
    disk_free: int | None = None
    disk_free_limit: int | None = None
    disk_free_alarm: bool = False
    fd_used: int | None = None
    fd_total: int | None = None
    # The nodes this one cannot reach although they belong to the cluster.
    partitions: list[str] = Field(default_factory=list)


@dataclass(slots=True, config=ConfigDict(extra="ignore"))
class Binding:
    """A binding of an exchange, as far as Warren reads one (`BINDING_COLUMNS`).

    A slotted dataclass, not a model: the tenant exchange has one per tenant, and as models
    100,000 of them took 46 MB (these, 6 MB)."""

    destination: str
    destination_type: str
    routing_key: str


# What the broker lists of each binding: half the bytes of the whole binding at 10,000, and a
# third less of its time.
BINDING_COLUMNS = ("destination", "destination_type", "routing_key")


class QueueRef(_ApiModel):
    name: str
    vhost: str


class ChannelRef(_ApiModel):
    name: str
    connection_name: str
    peer_host: str | None = None
    peer_port: int | None = None


class ConsumerInfo(_ApiModel):
    """One consumer as `GET /api/consumers/{vhost}` returns it."""

    consumer_tag: str
    queue: QueueRef
    # A closing channel is sent as `{}` (or `[]` by older brokers): no details, nothing held.
    channel_details: ChannelRef | None = None
    prefetch_count: int = 0
    ack_required: bool = True

    _no_channel = field_validator("channel_details", mode="before")(lambda value: value or None)


class ChannelStats(_ApiModel):
    # Cumulative; absent until the channel's first ack.
    ack: int = 0
    ack_details: Rate | None = None


class ChannelInfo(_ApiModel):
    """One channel: it, not the consumer, holds the unacked messages."""

    name: str
    messages_unacknowledged: int = 0
    global_prefetch_count: int = 0
    idle_since: datetime | None = None
    message_stats: ChannelStats | None = None

    _no_stats = field_validator("message_stats", mode="before")(lambda value: value or None)

    @field_validator("idle_since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Older brokers send "2026-11-27 22:33:48" with no zone; it is UTC.
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


class QueueSamples(_ApiModel):
    """A queue's acks and unacked count as the broker sampled them (`GET /api/queues/{vhost}/
    {name}` with `msg_rates_age` and `lengths_age`)."""

    message_stats: MessageStats | None = None
    messages_unacknowledged_details: Rate = Field(default_factory=Rate)

    _no_stats = field_validator("message_stats", mode="before")(lambda value: value or None)

    def points(self) -> list[tuple[float, bool, int]]:
        """(moment, messages held, acks so far), oldest first, at the moments of the unacked
        samples, each with the latest ack sample not after it (a queue that never acked has no
        ack samples: its count stood at 0)."""
        ack_details = self.message_stats.ack_details if self.message_stats else None
        acks = sorted(ack_details.by_second().items()) if ack_details else []
        points, count, taken = [], 0, 0
        for at, held in sorted(self.messages_unacknowledged_details.by_second().items()):
            while taken < len(acks) and acks[taken][0] <= at:
                count = acks[taken][1]
                taken += 1
            points.append((at, held > 0, count))
        return points


class ConnectionInfo(_ApiModel):
    name: str
    # Milliseconds since the epoch.
    connected_at: int | None = None
    client_properties: dict = Field(default_factory=dict)

    @property
    def client_name(self) -> str | None:
        name = self.client_properties.get("connection_name")
        return str(name) if name else None
