"""Requeue dead letters: move messages from a dead-letter queue back to the queue each one died
in (its first `x-death` entry), or to a chosen queue, through the mover (at least once)."""

import threading

from pydantic import BaseModel

from dashboard.amqp import ready_count
from dashboard.audit import AuditLog
from dashboard.errors import NotFound, WarrenError
from dashboard.models import ConsumerReport
from dashboard.mover import (
    SOURCE_EMPTY,
    Mover,
    MoveResult,
    Progress,
    Route,
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


class RequeuePlan(BaseModel):
    """What a requeue will touch, said before it runs."""

    source: str
    to: str | None
    ready: int
    limit: int

    @property
    def sentence(self) -> str:
        destination = f"queue {self.to!r}" if self.to else "the queue each one died in (x-death)"
        return (
            f"Requeue moves up to {self.limit:,} of the {self.ready:,} ready messages of "
            f"{self.source!r} to {destination}, each removed from {self.source!r} only after "
            "the broker confirmed its copy."
        )

    @property
    def route(self) -> Route:
        return to_queue(self.to) if self.to else back_to_where_it_died


def plan_requeue(settings: Settings, source: str, to: str | None, limit: int | None) -> RequeuePlan:
    ready = ready_count(settings, source)
    return RequeuePlan(
        source=source, to=to, ready=ready, limit=ready if limit is None else min(limit, ready)
    )


def requeue(
    settings: Settings,
    plan: RequeuePlan,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MoveResult:
    return Mover(
        settings, plan.source, plan.route, plan.limit, progress=progress, cancel=cancel
    ).run()


def requeue_audited(
    settings: Settings,
    plan: RequeuePlan,
    actor: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MoveResult:
    """Requeue with its audit record (for callers that confirmed it already)."""
    parameters = {"to": plan.to, "limit": plan.limit, "vhost": settings.vhost}
    with AuditLog(settings.audit_db).action(
        actor, "requeue", plan.source, parameters, False
    ) as entry:
        result = requeue(settings, plan, progress, cancel)
        entry.counts = {"moved": result.moved, "failed": result.failed, "skipped": result.skipped}
        entry.outcome = "ok" if finished_cleanly(result) else "stopped"
        entry.error = None if finished_cleanly(result) else result.stopped
    return result


def finished_cleanly(result: MoveResult) -> bool:
    return result.stopped in (None, SOURCE_EMPTY) and result.failed == 0


class HeldBy(BaseModel):
    """A connection (pod) and the messages its consumers hold unacked."""

    connection: str
    connection_id: str
    unacked: int
    queues: list[str]

    @property
    def sentence(self) -> str:
        return (
            f"Requeue closes connection {self.connection!r}: the broker returns the "
            f"{self.unacked:,} messages it holds unacked (from {', '.join(self.queues)}) to "
            "ready, and the pod must reconnect."
        )


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
