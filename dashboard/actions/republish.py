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

from dashboard.actions.audit import count
from dashboard.actions.mover import (
    Mover,
    Progress,
    holding_queue_name,
    move_through_holding,
    to_queue,
)
from dashboard.actions.moves import Moved, MovePlan, at_most, noting_earlier
from dashboard.actions.target_rules import arrival_from, way_back
from dashboard.broker.session import Session
from dashboard.broker.versions import BrokerVersion
from dashboard.reads.queue_detail import queue_settings


class RepublishPlan(MovePlan):
    """In place, the messages pass through the holding queue."""

    action = "republish"
    priority: int
    # A queue name, or None with `routing_key` for the tenant exchange.
    to_queue: str | None
    routing_key: str | None = None
    exchange: str = ""
    target_max_priority: int | None = None
    target_type: str = "classic"
    broker_version: BrokerVersion = BrokerVersion(3, 10, "3.10")

    @property
    def destinations(self) -> tuple[str, ...]:
        return (self.to_queue,) if self.to_queue else ()

    def parameters(self, vhost: str) -> dict:
        """What the audit log records about this republish."""
        return (
            {
                "priority": self.priority,
                "to": self.to_queue,
                "routing_key": self.routing_key,
                "limit": self.limit,
                "vhost": vhost,
            }
            | ({"holding": self.holding} if self.holding else {})
            | ({"rate": self.rate} if self.rate else {})
        )

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
    def what(self) -> str:
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
        ready = count(self.ready, "ready message")
        return (
            f"Republish copies up to {self.limit:,} of the {ready} of "
            f"{self.source!r} to {target}{how} with priority {self.priority}, keeping every "
            "other property and header; each original is removed only after its copy is "
            "confirmed." + "".join(f" Warning: {warning}" for warning in self.warnings)
        )

    def move(
        self, session: Session, progress: Progress | None, cancel: threading.Event | None
    ) -> Moved:
        priority = self.priority

        def with_priority(properties, _target):
            changed = copy.copy(properties)
            changed.priority = priority
            return changed

        if self.holding is None:
            route = (
                to_queue(self.to_queue)
                if self.to_queue
                else (lambda _properties, _key, _body: (self.exchange, self.routing_key))
            )
            mover = Mover(
                session, self.source, route, self.limit, with_priority, rate=self.rate,
                progress=progress, cancel=cancel,
            )  # fmt: skip
            result, holding = mover.run(), None
        else:
            result, holding = move_through_holding(
                session, self.source, self.holding, self.limit, to_queue(self.source),
                with_priority, progress, cancel, self.rate,
            )  # fmt: skip
        return Moved(result, {"moved": result.moved, "failed": result.failed}, holding)


def plan_republish(
    session: Session,
    source: str,
    priority: int,
    to: str | None,
    routing_key: str | None,
    limit: int | None,
    rate: float | None = None,
) -> RepublishPlan:
    """To queue `to` (default: `source`, in place), or to the tenant exchange with
    `routing_key`; the plan names what the target does with priorities."""
    ready = session.ready_count(source)
    target = None if routing_key else (to or source)
    info = queue_settings(session, target) if target is not None else None
    max_priority = info.arguments.get("x-max-priority") if info else None
    queue_type = info.type if info else "classic"
    most = at_most(ready, limit)
    # In place, the same messages come back: the queue holds no more than before.
    elsewhere = target is not None and target != source
    plan = RepublishPlan(
        source=source,
        priority=priority,
        ready=ready,
        limit=most,
        rate=rate,
        arrivals=[arrival_from(session, source, target, most, info)] if elsewhere else [],
        to_queue=target,
        routing_key=routing_key,
        exchange=session.exchange if routing_key else "",
        target_max_priority=max_priority,
        target_type=queue_type,
        broker_version=session.broker_version(),
        holding=holding_queue_name("republish", source) if target == source else None,
    )
    if plan.holding is not None:
        plan.arrivals = [way_back(session, source, plan.holding, most)]
    return noting_earlier(session, plan)
