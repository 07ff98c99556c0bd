"""Requeue dead letters: move messages from a dead-letter queue back to the queue each one died
in (its first `x-death` entry), or to a chosen queue, through the mover (at least once)."""

import threading

from pydantic import BaseModel, Field

from dashboard.access import change
from dashboard.amqp import ready_count
from dashboard.errors import NotFound, WarrenError
from dashboard.management import ManagementClient
from dashboard.messages import delivery_limit_sentence
from dashboard.models import ConsumerReport, QueueInfo, parse_all
from dashboard.mover import (
    Mover,
    MoveResult,
    Progress,
    Route,
    holding_queue_name,
    move_through_holding,
    to_queue,
)
from dashboard.settings import Settings


def back_to_where_it_died(properties) -> tuple[str, str] | None:
    """The queue of the message's first `x-death` entry, through the default exchange."""
    deaths = (properties.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        queue = deaths[0].get("queue")
        if isinstance(queue, str | bytes) and queue:
            return "", queue.decode() if isinstance(queue, bytes) else queue
    return None


class RequeueFilter(BaseModel):
    """Which dead letters to requeue: by tenant (a routing key the message died with), by
    `x-death` reason (rejected, expired, maxlen, delivery_limit), by a header's value."""

    tenant: str | None = None
    reason: str | None = None
    header: str | None = None
    value: str | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.tenant, self.reason, self.header))

    def matches(self, properties) -> bool:
        headers = properties.headers or {}
        death = _first_death(headers)
        if self.tenant is not None and self.tenant not in _texts(death.get("routing-keys", [])):
            return False
        if self.reason is not None and _text(death.get("reason")) != self.reason:
            return False
        return self.header is None or _text(headers.get(self.header)) == self.value

    @property
    def words(self) -> str:
        parts = [
            f"tenant {self.tenant!r}" if self.tenant is not None else "",
            f"reason {self.reason!r}" if self.reason is not None else "",
            f"header {self.header}={self.value!r}" if self.header is not None else "",
        ]
        return " and ".join(part for part in parts if part)


def _first_death(headers: dict) -> dict:
    deaths = headers.get("x-death")
    return deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}


def _text(value) -> str | None:
    return (
        value.decode(errors="replace")
        if isinstance(value, bytes)
        else (None if value is None else str(value))
    )


def _texts(values) -> list[str]:
    return [_text(value) for value in values] if isinstance(values, list) else []


class RequeuePlan(BaseModel):
    """What a requeue will touch, said before it runs."""

    source: str
    to: str | None
    ready: int
    limit: int
    only: RequeueFilter = RequeueFilter()
    # Filtered requeues pass through this queue (named before, for the audit log).
    holding: str | None = None

    @property
    def sentence(self) -> str:
        destination = f"queue {self.to!r}" if self.to else "the queue each one died in (x-death)"
        if self.only.active:
            return (
                f"Requeue looks at up to {self.limit:,} of the {self.ready:,} ready messages of "
                f"{self.source!r}, through holding queue {self.holding!r}: those with "
                f"{self.only.words} go to {destination}, the others back to {self.source!r}; "
                "each message leaves a queue only after the broker confirmed its copy."
            )
        return (
            f"Requeue moves up to {self.limit:,} of the {self.ready:,} ready messages of "
            f"{self.source!r} to {destination}, each removed from {self.source!r} only after "
            "the broker confirmed its copy."
        )

    def parameters(self, vhost: str) -> dict:
        """What the audit log records about this requeue."""
        return {"to": self.to, "limit": self.limit, "vhost": vhost} | (
            {"filter": self.only.model_dump(), "holding": self.holding} if self.only.active else {}
        )

    @property
    def route(self) -> Route:
        destination = to_queue(self.to) if self.to else back_to_where_it_died
        if not self.only.active:
            return destination
        return lambda properties: destination(properties) if self.only.matches(properties) else None


def plan_requeue(
    settings: Settings,
    source: str,
    to: str | None,
    limit: int | None,
    only: RequeueFilter | None = None,
) -> RequeuePlan:
    ready = ready_count(settings, source)
    only = only or RequeueFilter()
    return RequeuePlan(
        source=source,
        to=to,
        ready=ready,
        limit=ready if limit is None else min(limit, ready),
        only=only,
        holding=holding_queue_name("requeue", source) if only.active else None,
    )


def requeue(
    settings: Settings,
    plan: RequeuePlan,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MoveResult:
    if not plan.only.active:
        return Mover(
            settings, plan.source, plan.route, plan.limit, progress=progress, cancel=cancel
        ).run()
    # Messages that do not match go back to the source; through a holding queue so that the
    # mover does not meet them again.
    matched = []

    def counting(properties):
        target = plan.route(properties)
        if target is not None:
            matched.append(1)
        return target

    result, holding = move_through_holding(
        settings, plan.source, plan.holding, plan.limit, counting, progress=progress, cancel=cancel
    )
    result.kept = result.moved - len(matched)
    result.moved = len(matched)
    if holding:
        result.stopped = f"some messages wait in holding queue {holding!r}"
    return result


def requeue_audited(
    settings: Settings,
    plan: RequeuePlan,
    actor: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MoveResult:
    """Requeue with its audit record (for callers that confirmed it already)."""
    parameters = plan.parameters(settings.vhost)
    with change(settings, actor, "requeue", plan.source, parameters) as entry:
        result = requeue(settings, plan, progress, cancel)
        entry.counts = {"moved": result.moved, "failed": result.failed, "skipped": result.skipped}
        if plan.only.active:
            entry.counts["kept"] = result.kept
        entry.outcome = "ok" if result.clean else "stopped"
        entry.error = None if result.clean else result.stopped
    return result


class HeldBy(BaseModel):
    """A connection (pod) and the messages its consumers hold unacked."""

    connection: str
    connection_id: str
    unacked: int
    queues: list[str]
    # Those of `queues` that are quorum queues, each with its delivery limit in a sentence
    # (see `quorum_queues`).
    quorum: dict[str, str] = Field(default_factory=dict)

    @property
    def sentence(self) -> str:
        sentence = (
            f"Requeue closes connection {self.connection!r}: the broker returns the "
            f"{self.unacked:,} messages it holds unacked (from {', '.join(self.queues)}) to "
            "ready, and the pod must reconnect."
        )
        for queue, limit in self.quorum.items():
            sentence += (
                f" On quorum queue {queue} each message returned counts as a delivery: its "
                "x-delivery-count goes up by one, and past the queue's delivery limit the broker "
                f"dead-letters or drops it. {limit}"
            )
        return sentence


def release_audited(settings: Settings, held: HeldBy, actor: str) -> None:
    """Close the connection that holds the messages (audited): the broker returns them to
    ready. Closing is the only way over HTTP: channels cannot be closed there."""
    parameters = held.model_dump()
    with (
        change(settings, actor, "requeue-connection", held.connection_id, parameters) as entry,
        ManagementClient(settings) as client,
    ):
        client.close_connection(held.connection_id, f"Closed by Warren for {actor}")
        entry.counts = {"unacked_returned": held.unacked}


def quorum_queues(client: ManagementClient, vhost: str, queues: list[str]) -> dict[str, str]:
    """The quorum queues among `queues`, each with its delivery limit (a sentence)."""
    columns = {"columns": "name,vhost,type,arguments,effective_policy_definition"}
    raw = [client.get_queue(vhost, queue, columns) for queue in queues]
    infos = parse_all(QueueInfo, raw, "the queues the pod consumes")
    quorum = [info for info in infos if info.type == "quorum"]
    version = client.broker_version() if quorum else None
    return {info.name: delivery_limit_sentence(info, version) for info in quorum}


def held_by(report: ConsumerReport, connection: str) -> HeldBy:
    """What `connection` (a pod's client-given name, or the broker's name for it) holds."""
    loads = [load for load in report.loads if connection in (load.connection, load.connection_id)]
    ids = {load.connection_id for load in loads}
    if not loads:
        raise NotFound(f"No consumer connection is named {connection!r}: nothing was changed.")
    if len(ids) > 1:
        raise WarrenError(
            f"{len(ids)} connections are named {connection!r}: name one by the broker's name "
            f"({', '.join(sorted(ids))}). Nothing was changed."
        )
    per_channel = {load.channel: load.unacked for load in loads}
    return HeldBy(
        connection=loads[0].connection,
        connection_id=ids.pop(),
        unacked=sum(per_channel.values()),
        queues=sorted({load.queue for load in loads}),
    )
