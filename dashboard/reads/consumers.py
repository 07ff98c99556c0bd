"""Per-consumer load: consumers joined to their channels (which hold the unacked messages) and
connections (whose client-given name is the pod's), with flags an on-call engineer acts on."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from dashboard.broker.models import (
    ChannelInfo,
    ChannelStats,
    ConnectionInfo,
    ConsumerInfo,
    parse_all,
)
from dashboard.broker.session import Session
from dashboard.reads.durations import duration_text
from dashboard.reads.models import ConsumerLoad, ConsumerReport, Flag, PodLoad
from dashboard.reads.overview import work_queues
from dashboard.reads.queue_detail import BROKER_SECONDS, BROKER_STEP
from dashboard.reads.silence import HOUR_SECONDS, HOUR_STEP, Silence, earliest, silence_in
from dashboard.reads.timeouts import held_queue_timeouts

CELERY_PIDBOX = ".celery.pidbox"
# The broker's statistics interval by default (collect_statistics_interval): what a poll reads
# of a channel may be this old.
STATISTICS_SECONDS = 5.0
# A pod connected for less long may not have set its prefetch yet.
SETTLING_SECONDS = 10.0
# A consumer is flagged from this share of its queue's consumer timeout.
NEAR_TIMEOUT = 0.8
CHANNEL_COLUMNS = (
    "name",
    "messages_unacknowledged",
    "global_prefetch_count",
    "idle_since",
    "message_stats.ack_details.rate",
    "message_stats.ack",
)


class AckWatch:
    """A poll's memory of each channel's ack count, and since when it has not changed.

    A channel's `idle_since` alone cannot prove a worker stuck: the queue process talks to a
    consuming channel now and then, which resets it although nothing is acked.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, Silence]] = {}
        # Per channel: whether it held messages at the last poll, when that poll was, and
        # since when it holds.
        self._holding: dict[str, tuple[bool, float, float | None]] = {}

    def holding_since(self, channel: str, holds: bool, now: float) -> float | None:
        """When the channel began to hold messages, if a poll saw it holding none before: about
        when that poll was (a pod idle for an hour that just took a job has not held it for an
        hour), less the age of the statistics it read, since the job may have come right
        before them (a long job meets the consumer timeout on the broker's clock, not on
        Warren's polls). None when no poll saw it begin."""
        was, seen_at, since = self._holding.get(channel, (holds, now, None))
        if not holds:
            since = None
        elif not was:
            since = seen_at - STATISTICS_SECONDS
        self._holding[channel] = (holds, now, since)
        return since

    def silence(self, channel: str, acks: int, now: float) -> Silence:
        previous = self._seen.get(channel)
        if previous is None:
            # First sight: the count may have stood still for long before.
            previous = (acks, Silence(now, at_least=True))
        elif previous[0] != acks:
            previous = (acks, Silence(now))
        self._seen[channel] = previous
        return previous[1]

    def learn(self, channel: str, acks: int, silence: Silence) -> None:
        """What the broker's samples showed of the channel's silence, kept while the count
        stands, so that they are asked once."""
        seen = self._seen.get(channel)
        if seen is not None and seen[0] == acks and silence.since < seen[1].since:
            self._seen[channel] = (acks, silence)

    def keep_only(self, channels: set[str]) -> None:
        self._seen = {name: seen for name, seen in self._seen.items() if name in channels}
        self._holding = {name: held for name, held in self._holding.items() if name in channels}


CONNECTION_COLUMNS = ("name", "client_properties", "connected_at")
SEES_ALL_CONNECTIONS = {"monitoring", "administrator"}


def fetch_consumers(
    session: Session, watch: AckWatch | None = None, now: datetime | None = None
) -> ConsumerReport:
    """Every consumer of the vhost that the user may see, grouped by connection (pod), flagged.
    With `watch` (a poll's memory of ack counts), "no ack" is proven across polls too.

    A consumer whose channel is closing (or closed between the requests) is left out: it holds
    nothing now.
    """
    listed = _Listed.of(session)
    # The topology's settings, listed at most every WARREN_TOPOLOGY_SECONDS.
    tenants, dead_letter_queues = session.remembered(
        "work-queues", session.settings.topology_seconds, lambda: work_queues(session)
    )
    moment = now or datetime.now(UTC)
    worker_names = _worker_names(listed.visible)
    held = []
    for consumer in listed.visible:
        load = listed.load_of(consumer, tenants.get(consumer.queue.name, []))
        connection = listed.connection_of(consumer)
        if not (connection and connection.client_name):
            load.connection = worker_names.get(load.connection_id, load.connection)
        load.work = load.queue in tenants or load.queue in dead_letter_queues
        held.append(_silence_of(load, listed, consumer, watch, moment))
    loads = _judged(session, watch, moment, held)
    _flag_waiting_behind(loads, moment, session.settings.refresh_seconds)
    if watch is not None:
        watch.keep_only({load.channel for load in loads})
    loads.sort(key=lambda load: (load.connection, load.channel, load.consumer_tag))
    tags = set(session.whoami().get("tags") or [])
    return ConsumerReport(loads=loads, own_only=not tags & SEES_ALL_CONNECTIONS)


@dataclass(frozen=True)
class _Listed:
    """The vhost's consumers the user may see, with their channels and connections."""

    visible: list[ConsumerInfo]
    channels: dict[str, ChannelInfo]
    connections: dict[str, ConnectionInfo]
    by_channel: dict[str, list[ConsumerInfo]]

    @classmethod
    def of(cls, session: Session) -> "_Listed":
        client, vhost = session.client, session.vhost
        consumers = parse_all(ConsumerInfo, client.list_consumers_in(vhost), "the consumer list")
        listed = client.list_channels_in(
            vhost,
            CHANNEL_COLUMNS,
            {"msg_rates_age": str(BROKER_SECONDS), "msg_rates_incr": str(BROKER_STEP)},
        )
        channels = {
            channel.name: channel for channel in parse_all(ChannelInfo, listed, "the channels")
        }
        listed = client.list_connections_in(vhost, CONNECTION_COLUMNS)
        connections = {
            connection.name: connection
            for connection in parse_all(ConnectionInfo, listed, "the connections")
        }
        visible = [
            consumer
            for consumer in consumers
            if consumer.channel_details and consumer.channel_details.name in channels
        ]
        by_channel: dict[str, list[ConsumerInfo]] = defaultdict(list)
        for consumer in visible:
            by_channel[consumer.channel_details.name].append(consumer)
        return cls(visible, channels, connections, by_channel)

    def channel_of(self, consumer: ConsumerInfo) -> ChannelInfo:
        return self.channels[consumer.channel_details.name]

    def connection_of(self, consumer: ConsumerInfo) -> ConnectionInfo | None:
        return self.connections.get(consumer.channel_details.connection_name)

    def load_of(self, consumer: ConsumerInfo, tenants: list[str]) -> ConsumerLoad:
        return _load(
            consumer,
            self.channel_of(consumer),
            self.connection_of(consumer),
            tenants,
            self.by_channel[consumer.channel_details.name],
        )


def _silence_of(
    load: ConsumerLoad,
    listed: _Listed,
    consumer: ConsumerInfo,
    watch: AckWatch | None,
    moment: datetime,
) -> tuple[ConsumerLoad, Silence | None, float | None]:
    """The load, how long it has held messages without an ack as far as this poll knows, and
    when that silence may begin at the earliest."""
    connection = listed.connection_of(consumer)
    connected = connection.connected_at / 1000 if connection and connection.connected_at else None
    remembered = watch.silence(load.channel, load.acks, moment.timestamp()) if watch else None
    took_work = (
        watch.holding_since(load.channel, load.unacked > 0, moment.timestamp()) if watch else None
    )
    # A pod's limits settle in its first seconds (Celery sets a channel-wide prefetch after
    # it starts consuming, and the broker's statistics show it up to an interval later).
    load.prefetch_known = bool(load.prefetch) or (
        connected is not None and moment.timestamp() - connected > SETTLING_SECONDS
    )
    # Silent no earlier than its pod connected, nor than it took the work it holds.
    not_before = max((t for t in (connected, took_work) if t is not None), default=None)
    # An auto-ack consumer never acks: its silence means nothing.
    silence = (
        earliest(
            _broker_silence(listed.channel_of(consumer).message_stats, load.acks, connected),
            remembered,
            not_before=not_before,
        )
        if load.ack_required
        else None
    )
    return load, silence, not_before


def _judged(
    session: Session,
    watch: AckWatch | None,
    moment: datetime,
    held: list[tuple[ConsumerLoad, Silence | None, float | None]],
) -> list[ConsumerLoad]:
    """The loads with their silences made as long as the broker's hour of samples proves, their
    consumer timeouts, and their flags."""
    hour = _hour_of_samples(session, [(load, silence) for load, silence, _ in held], moment)
    # Asked only for the queues whose timeout a flag will read.
    timeouts = held_queue_timeouts(
        session,
        sorted(
            {load.queue for load, _, _ in held if load.unacked and load.ack_required and load.work}
        ),
    )
    loads = []
    for load, silence, not_before in held:
        if load.channel in hour:
            silence = earliest(
                silence, _broker_silence(hour[load.channel], load.acks, None), not_before=not_before
            )
        if watch is not None and silence is not None:
            watch.learn(load.channel, load.acks, silence)
        _hear(load, silence, moment)
        if load.unacked and load.ack_required:
            load.timeout_seconds = timeouts.get(load.queue, session.settings.consumer_timeout)
        if load.work:
            load.flags = flags_of(load, silence, session.settings.stuck_after_seconds, moment)
        loads.append(load)
    return loads


def own_only_sentence(username: str) -> str:
    return (
        f"User {username!r} has no monitoring tag, so the broker shows it only the consumers of "
        "its own connections."
    )


def pods_of(loads: list[ConsumerLoad]) -> list[PodLoad]:
    """The loads summed per connection (pod), in the order the loads come."""
    pods: dict[str, list[ConsumerLoad]] = defaultdict(list)
    for load in loads:
        pods[load.connection_id].append(load)
    return [_pod(members) for members in pods.values()]


def _pod(members: list[ConsumerLoad]) -> PodLoad:
    channels = {load.channel: load for load in members}.values()
    return PodLoad(
        connection=members[0].connection,
        connection_id=members[0].connection_id,
        consumers=len(members),
        unacked=sum(load.unacked for load in channels),
        prefetch=sum(load.channel_prefetch for load in channels),
        queues=sorted({load.queue for load in members}),
        flags=[flag for load in members for flag in load.flags],
    )


def _load(
    consumer: ConsumerInfo,
    channel: ChannelInfo,
    connection: ConnectionInfo | None,
    tenants: list[str],
    on_channel: list[ConsumerInfo],
) -> ConsumerLoad:
    details = consumer.channel_details
    # basic.qos with global=false limits each consumer; global=true limits the whole channel.
    prefetch = consumer.prefetch_count or channel.global_prefetch_count
    own_limits = [other.prefetch_count for other in on_channel]
    # A consumer without its own limit (0) is unlimited, and so is the channel then.
    channel_prefetch = channel.global_prefetch_count or (0 if 0 in own_limits else sum(own_limits))
    unacked = channel.messages_unacknowledged
    stats = channel.message_stats
    acks = stats.ack if stats else 0
    return ConsumerLoad(
        connection=(connection and connection.client_name) or _peer(details),
        connection_id=details.connection_name,
        channel=details.name,
        consumer_tag=consumer.consumer_tag,
        queue=consumer.queue.name,
        vhost=consumer.queue.vhost,
        tenants=tenants,
        prefetch=prefetch,
        unacked=unacked,
        channel_consumers=len(on_channel),
        channel_prefetch=channel_prefetch,
        load=unacked / channel_prefetch if channel_prefetch else None,
        ack_rate=stats.ack_details.rate if stats and stats.ack_details else None,
        acks=acks,
        ack_required=consumer.ack_required,
        idle_since=channel.idle_since,
    )


def _worker_names(consumers: list[ConsumerInfo]) -> dict[str, str]:
    """The name a worker framework gives its pod, by connection, for connections that name
    themselves no other way: a Celery worker `pod-a@host` consumes `pod-a@host.celery.pidbox`
    on the connection it works on."""
    return {
        consumer.channel_details.connection_name: consumer.queue.name.removesuffix(CELERY_PIDBOX)
        for consumer in consumers
        if consumer.queue.name.endswith(CELERY_PIDBOX)
    }


def _flag_waiting_behind(loads: list[ConsumerLoad], now: datetime, interval: float) -> None:
    """Fair dispatch broken by prefetch: a consumer holds a job it has not started (more than
    one unacked) while another pod's consumer of the same queue has held none for longer than
    a poll. (The other's channel `idle_since` stands for "for more than one poll": a one-shot
    run sees it as a console does.) The free consumers are found once per queue: comparing
    every consumer with every other took a minute at 10,000 consumers."""
    free_on: dict[str, list[ConsumerLoad]] = defaultdict(list)
    for other in loads:
        if (
            other.ack_required
            and other.unacked == 0
            and other.idle_since is not None
            and (now - other.idle_since).total_seconds() > interval
        ):
            free_on[other.queue].append(other)
    for load in loads:
        if load.unacked < 2 or not load.ack_required or not load.work:
            continue
        free = sorted(
            {
                other.connection
                for other in free_on.get(load.queue, [])
                if other.connection_id != load.connection_id
            }
        )
        if free:
            holds = "hold" if len(free) > 1 else "holds"
            load.flags.append(
                Flag(
                    kind="waiting-behind-job",
                    reason=f"Holds {load.unacked:,} unacked (prefetch {load.prefetch:,}): "
                    f"{load.unacked - 1:,} wait behind the job it is on, while "
                    f"{', '.join(free)} on the same queue {holds} none. With prefetch 1, "
                    "long jobs go to free pods.",
                )
            )


def _hour_of_samples(
    session: Session, silences: list[tuple[ConsumerLoad, Silence | None]], now: datetime
) -> dict[str, ChannelStats]:
    """The broker's hour of ack samples (a minute apart) of the channels whose silence reaches
    back past its last 10 minutes: one more listing, asked only while some channel holding
    messages needs it (the poll's AckWatch keeps what it showed)."""
    hour_ago = now.timestamp() - HOUR_SECONDS + HOUR_STEP
    if not any(
        silence and silence.at_least and silence.since > hour_ago and load.unacked
        for load, silence in silences
    ):
        return {}
    listed = session.client.list_channels_in(
        session.vhost,
        ("name", "message_stats.ack"),
        {"msg_rates_age": str(HOUR_SECONDS), "msg_rates_incr": str(HOUR_STEP)},
    )
    return {
        channel.name: channel.message_stats
        for channel in parse_all(ChannelInfo, listed, "the channels")
        if channel.message_stats
    }


def _broker_silence(
    stats: ChannelStats | None, acks: int, connected: float | None
) -> Silence | None:
    """What the broker's samples of the channel's acks show; a channel that never acked has none,
    and has been silent since its connection opened (unknown when the connection is)."""
    samples = stats.ack_details.by_second() if stats and stats.ack_details else {}
    if not samples:
        return Silence(connected) if acks == 0 and connected is not None else None
    return silence_in([(at, count == acks) for at, count in sorted(samples.items())])


def _hear(load: ConsumerLoad, silence: Silence | None, now: datetime) -> None:
    """Keep the silence on the load, as a moment and as the words every face shows."""
    if silence is None:
        return
    load.acks_unchanged_since = datetime.fromtimestamp(silence.since, UTC)
    load.acks_unchanged_at_least = silence.at_least
    if load.unacked:
        load.no_ack_for = silence.text(now.timestamp())


def _peer(details) -> str:
    return (
        f"{details.peer_host}:{details.peer_port}" if details.peer_host else details.connection_name
    )


def flags_of(
    load: ConsumerLoad, silence: Silence | None, stuck_after: float, now: datetime
) -> list[Flag]:
    quiet_for = silence.seconds(now.timestamp()) if silence else 0.0
    quiet = silence.text(now.timestamp()) if silence else ""
    flags = []
    if not load.ack_required:
        flags.append(
            Flag(
                kind="auto-ack",
                reason="Acks on delivery: a message is lost if this pod dies mid-job.",
            )
        )
    elif load.prefetch == 0 and load.prefetch_known:
        flags.append(
            Flag(
                kind="unlimited-prefetch",
                reason="Prefetch 0 (unlimited): the broker pushes every ready message to this "
                "consumer, which defeats fair dispatch of long jobs.",
            )
        )
    limit = load.channel_prefetch
    if limit and load.unacked >= limit and quiet_for >= stuck_after:
        flags.append(
            Flag(
                kind="stuck",
                reason=f"Saturated ({load.unacked:,} unacked, prefetch {limit:,}) with "
                f"no ack for {quiet}: a stuck worker.",
            )
        )
    if load.timeout_seconds and quiet_for >= NEAR_TIMEOUT * load.timeout_seconds:
        flags.append(
            Flag(
                kind="near-consumer-timeout",
                reason=f"Held {quiet} of the broker's {duration_text(load.timeout_seconds)} "
                "consumer timeout: past it the broker closes the channel (a 406) and its "
                "messages go back to ready, for the next pod to take and time out on again.",
            )
        )
    if load.unacked == 0 and load.ack_required and quiet_for >= stuck_after:
        flags.append(Flag(kind="idle", reason=f"Holds nothing and got nothing for {quiet}."))
    return flags
