"""Capture: keep what the tenant exchange cannot route, instead of letting it drop; and once its
tenant is onboarded, move the captured messages into the tenant's queue (see reads/unrouted.py).

The capture is an alternate exchange on the tenant exchange, set by policy (an exchange's
arguments cannot change once it is declared), into a bounded classic queue: past its bound the
oldest captured messages are dropped, which the plan says. One policy applies to an exchange at
a time, so an exchange that already has another one (or an alternate exchange of its own) is
refused, not overridden.
"""

import re
import threading
import time

from pydantic import BaseModel

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.actions.mover import Mover, Progress, Route
from dashboard.actions.moves import Moved, MovePlan, noting_earlier
from dashboard.actions.target_rules import arrival_from
from dashboard.broker.session import Session
from dashboard.errors import WarrenError
from dashboard.reads.unrouted import (
    CAPTURE_MAX_MESSAGES,
    capture_names,
    fetch_unrouted,
    tenant_exchange_info,
)

# The policy shows in the broker's own tools: it says who set it.
POLICY_PRIORITY = 0
POLICY_SECONDS = 5.0


class CapturePlan(BaseModel):
    exchange: str
    capture_queue: str
    policy: str
    max_messages: int
    already: bool
    dropped: int

    @property
    def sentence(self) -> str:
        if self.already:
            return (
                f"Exchange {self.exchange!r} already sends what it cannot route to queue "
                f"{self.capture_queue!r} (policy {self.policy!r}): nothing to change."
            )
        lost = (
            f" The {count(self.dropped, 'message')} it dropped before cannot be recovered."
            if self.dropped
            else ""
        )
        return (
            f"Capture sets policy {self.policy!r} on exchange {self.exchange!r}: a message "
            "that no tenant is bound to take goes to queue "
            f"{self.capture_queue!r}, with its routing key (the tenant id), instead of being "
            f"dropped. The queue keeps at most {self.max_messages:,}: past that the oldest "
            f"captured are dropped.{lost}"
        )


def plan_capture(session: Session) -> CapturePlan:
    exchange = tenant_exchange_info(session)
    names = capture_names(session.exchange)
    if exchange.arguments.get("alternate-exchange"):
        raise WarrenError(
            f"Exchange {session.exchange!r} was declared with alternate exchange "
            f"{exchange.arguments['alternate-exchange']!r}, which wins over any policy: what it "
            "cannot route goes there already. Nothing was changed."
        )
    if exchange.policy not in (None, names.policy):
        raise WarrenError(
            f"Exchange {session.exchange!r} has policy {exchange.policy!r}, and only one policy "
            f'applies to an exchange: Warren\'s would replace it. Add "alternate-exchange": '
            f"{names.exchange!r} to that policy instead. Nothing was changed."
        )
    unrouted = fetch_unrouted(session, list_ids=False, exchange=exchange)
    return CapturePlan(
        exchange=session.exchange,
        capture_queue=names.queue,
        policy=names.policy,
        max_messages=CAPTURE_MAX_MESSAGES,
        already=unrouted.capturing,
        dropped=unrouted.dropped,
    )


def capture(session: Session, plan: CapturePlan, actor: str) -> int:
    """Set up the capture (for callers that confirmed the plan), audited; returns once the
    broker shows the policy in force on the exchange, with the messages captured so far."""
    names = capture_names(plan.exchange)
    parameters = {"vhost": session.vhost, "policy": plan.policy, "queue": plan.capture_queue}
    with change(session, actor, "capture", plan.exchange, parameters) as entry:

        def declare(channel) -> None:
            channel.exchange_declare(names.exchange, "fanout", durable=True)
            channel.queue_declare(
                names.queue, durable=True, arguments={"x-max-length": plan.max_messages}
            )
            channel.queue_bind(names.queue, names.exchange)

        session.on_channel(declare, f"The capture queue {names.queue!r} cannot be declared")
        session.client.set_policy(
            session.vhost,
            names.policy,
            {
                "pattern": f"^{re.escape(plan.exchange)}$",
                "apply-to": "exchanges",
                "definition": {"alternate-exchange": names.exchange},
                "priority": POLICY_PRIORITY,
            },
        )
        _wait_in_force(session, names.policy)
        entry.counts = {"captured": session.ready_count(names.queue)}
    return entry.counts["captured"]


def _wait_in_force(session: Session, policy: str) -> None:
    deadline = time.monotonic() + POLICY_SECONDS
    while time.monotonic() < deadline:
        if tenant_exchange_info(session).policy == policy:
            return
        time.sleep(0.2)
    raise WarrenError(
        f"Policy {policy!r} was set, but the broker did not show it in force on exchange "
        f"{session.exchange!r} within {POLICY_SECONDS:g} s: check it with rabbitmqctl "
        "list_policies."
    )


class MoveCapturedPlan(MovePlan):
    """Every captured message looked at once: the tenant's go through the tenant exchange (to
    its queue, with their routing key), the others back to the capture queue's tail. The mover
    takes only as many as the queue held: the first of them are the originals, not its copies."""

    action = "move-captured"
    tenant: str
    exchange: str
    to: str
    matching: int

    @property
    def what(self) -> str:
        return (
            f"Move looks at the {count(self.ready, 'captured message')} of {self.source!r}: "
            f"the {self.matching:,} for tenant {self.tenant!r} go to its queue {self.to!r} "
            f"through exchange {self.exchange!r}, the others back to {self.source!r}; each "
            "message leaves the capture queue only after the broker confirmed its copy."
        )

    @property
    def destinations(self) -> tuple[str, ...]:
        return (self.to,)

    def parameters(self, vhost: str) -> dict:
        return {"tenant": self.tenant, "to": self.to, "limit": self.limit, "vhost": vhost}

    @property
    def route(self) -> Route:
        back = capture_names(self.exchange).exchange
        return lambda _properties, key, _body: (self.exchange if key == self.tenant else back, key)

    def move(
        self, session: Session, progress: Progress | None, cancel: threading.Event | None
    ) -> Moved:
        route, tenant = self.route, self.tenant
        matched = []

        def counting(properties, key, body):
            if key == tenant:
                matched.append(1)
            return route(properties, key, body)

        result = Mover(
            session, self.source, counting, self.limit, progress=progress, cancel=cancel
        ).run()
        result.kept, result.moved = result.moved - len(matched), len(matched)
        counts = {"moved": result.moved, "kept": result.kept, "failed": result.failed}
        return Moved(result, counts | {"skipped": result.skipped})


def plan_move_captured(session: Session, tenant: str) -> MoveCapturedPlan:
    unrouted = fetch_unrouted(session)
    captured = next((i for i in unrouted.ids if i.routing_key == tenant), None)
    if captured is None:
        raise WarrenError(
            f"The capture queue {unrouted.capture_queue!r} holds no message for tenant "
            f"{tenant!r}: nothing to move."
        )
    if captured.bound_to is None:
        raise WarrenError(
            f"Tenant {tenant!r} is not bound to exchange {session.exchange!r} yet: onboard it "
            "first, then move its captured messages."
        )
    plan = MoveCapturedPlan(
        source=unrouted.capture_queue,
        ready=unrouted.captured,
        limit=unrouted.captured,
        tenant=tenant,
        exchange=session.exchange,
        to=captured.bound_to,
        matching=captured.messages,
        arrivals=[
            arrival_from(session, unrouted.capture_queue, captured.bound_to, captured.messages)
        ],
    )
    return noting_earlier(session, plan)


def moved_captured_sentence(session: Session, plan: MoveCapturedPlan, moved: Moved) -> str:
    """The result as the broker holds it afterwards: the tenant queue's ready count read now."""
    result = moved.result
    in_queue = session.ready_count(plan.to)
    stopped = f" Stopped: {result.stopped}." if not result.clean else ""
    return (
        f"Moved {count(result.moved, 'captured message')} of tenant {plan.tenant!r} into "
        f"{plan.to!r} ({in_queue:,} ready there now); {result.kept:,} for other ids stay in "
        f"{plan.source!r}.{stopped}"
    )
