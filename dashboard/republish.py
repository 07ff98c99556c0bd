"""Republish with priority: copies of a queue's messages, with a new `priority` property and
everything else kept, to the same queue, another queue, or the tenant exchange with a routing
key; through the mover, so at least once.

In place, the mover would meet its own copies (a priority queue even delivers them first), so
the messages go through a holding queue: first all of them out to it, then back with the new
priority. A crash between the two leaves them in the holding queue, which is named in the
result and the audit log, never lost.
"""

import copy
import threading

from pydantic import BaseModel

from dashboard.access import change
from dashboard.amqp import ready_count
from dashboard.management import ManagementClient
from dashboard.mover import (
    Mover,
    MoveResult,
    Progress,
    holding_queue_name,
    move_through_holding,
    to_queue,
)
from dashboard.settings import Settings
from dashboard.versions import BrokerVersion


class RepublishPlan(BaseModel):
    source: str
    priority: int
    ready: int
    limit: int
    # A queue name, or None with `routing_key` for the tenant exchange.
    to_queue: str | None
    routing_key: str | None = None
    exchange: str = ""
    target_max_priority: int | None = None
    target_type: str = "classic"
    broker_version: BrokerVersion = BrokerVersion(3, 10, "3.10")
    # In place, the messages pass through this queue (named before, for the audit log).
    holding: str | None = None

    def parameters(self, vhost: str) -> dict:
        """What the audit log records about this republish."""
        return {
            "priority": self.priority,
            "to": self.to_queue,
            "routing_key": self.routing_key,
            "limit": self.limit,
            "vhost": vhost,
        } | ({"holding": self.holding} if self.holding else {})

    @property
    def warnings(self) -> list[str]:
        if self.to_queue is None:
            return []
        if self.target_type == "quorum":
            return [
                f"Queue {self.to_queue!r} is a quorum queue; on RabbitMQ "
                f"{self.broker_version.text} its priorities are "
                f"{self.broker_version.quorum_priorities}."
            ]
        if self.target_max_priority is None:
            return [
                f"Queue {self.to_queue!r} has no x-max-priority: the broker will ignore the "
                "new priority."
            ]
        if self.priority > self.target_max_priority:
            return [
                f"Priority {self.priority} is above the x-max-priority of {self.to_queue!r} "
                f"({self.target_max_priority}): the broker treats it as "
                f"{self.target_max_priority}."
            ]
        return []

    @property
    def sentence(self) -> str:
        target = (
            f"queue {self.to_queue!r}"
            if self.to_queue
            else f"exchange {self.exchange!r} with routing key {self.routing_key!r}"
        )
        how = (
            f" (through holding queue {self.holding!r}: it is the same queue)"
            if self.holding
            else ""
        )
        return (
            f"Republish copies up to {self.limit:,} of the {self.ready:,} ready messages of "
            f"{self.source!r} to {target}{how} with priority {self.priority}, keeping every "
            "other property and header; each original is removed only after its copy is "
            "confirmed." + "".join(f" Warning: {warning}" for warning in self.warnings)
        )


def plan_republish(
    settings: Settings,
    client: ManagementClient,
    source: str,
    priority: int,
    to: str | None,
    routing_key: str | None,
    limit: int | None,
) -> RepublishPlan:
    ready = ready_count(settings, source)
    target = None if routing_key else (to or source)
    max_priority, queue_type = None, "classic"
    if target is not None:
        answer = client.get_queue(settings.vhost, target, {"columns": "name,type,arguments"})
        max_priority = (answer.get("arguments") or {}).get("x-max-priority")
        queue_type = str(answer.get("type", "classic"))
    return RepublishPlan(
        source=source,
        priority=priority,
        ready=ready,
        limit=ready if limit is None else min(limit, ready),
        to_queue=target,
        routing_key=routing_key,
        exchange=settings.tenant_exchange if routing_key else "",
        target_max_priority=max_priority,
        target_type=queue_type,
        broker_version=client.broker_version(),
        holding=holding_queue_name("republish", source) if target == source else None,
    )


def republish(
    settings: Settings,
    plan: RepublishPlan,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> tuple[MoveResult, str | None]:
    """The move's result, and the holding queue when the move went through one. `cancel` stops
    the taking of messages; those already taken are still republished."""

    def with_priority(properties):
        changed = copy.copy(properties)
        changed.priority = plan.priority
        return changed

    if plan.holding is None:
        route = (
            to_queue(plan.to_queue)
            if plan.to_queue
            else (lambda _properties: (plan.exchange, plan.routing_key))
        )
        mover = Mover(
            settings, plan.source, route, plan.limit, with_priority, progress=progress,
            cancel=cancel,
        )  # fmt: skip
        return mover.run(), None
    return move_through_holding(
        settings, plan.source, plan.holding, plan.limit, to_queue(plan.source), with_priority,
        progress, cancel,
    )  # fmt: skip


def republish_audited(
    settings: Settings,
    plan: RepublishPlan,
    actor: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> tuple[MoveResult, str | None]:
    """Republish with its audit record (for callers that confirmed it already)."""
    parameters = plan.parameters(settings.vhost)
    with change(settings, actor, "republish", plan.source, parameters) as entry:
        result, holding = republish(settings, plan, progress, cancel)
        entry.counts = {"moved": result.moved, "failed": result.failed}
        entry.outcome = "ok" if result.clean and not holding else "stopped"
        entry.error = f"messages left in holding queue {holding!r}" if holding else None
    return result, holding
