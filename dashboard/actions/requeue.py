"""Requeue dead letters: move messages from a dead-letter queue back to the queue each one died
in (its first `x-death` entry), or to a chosen queue, through the mover (at least once)."""

import threading

from pydantic import BaseModel

from dashboard.actions.audit import count
from dashboard.actions.mover import (
    Mover,
    MoveResult,
    Progress,
    Route,
    holding_queue_name,
    move_through_holding,
    to_queue,
)
from dashboard.actions.moves import Moved, MovePlan, at_most
from dashboard.actions.target_rules import arrival, queue_rules
from dashboard.broker.session import Session


def back_to_where_it_died(properties, _routing_key: str) -> tuple[str, str] | None:
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


class RequeuePlan(MovePlan):
    """What a requeue will touch, said before it runs. Filtered requeues pass through a holding
    queue."""

    action = "requeue"
    to: str | None
    only: RequeueFilter = RequeueFilter()

    @property
    def what(self) -> str:
        destination = f"queue {self.to!r}" if self.to else "the queue each one died in (x-death)"
        ready = count(self.ready, "ready message")
        if self.only.active:
            return (
                f"Requeue looks at up to {self.limit:,} of the {ready} of "
                f"{self.source!r}, through holding queue {self.holding!r}: those with "
                f"{self.only.words} go to {destination}, the others back to {self.source!r}; "
                "each message leaves a queue only after the broker confirmed its copy."
            )
        return (
            f"Requeue moves up to {self.limit:,} of the {ready} of "
            f"{self.source!r} to {destination}, each removed from {self.source!r} only after "
            "the broker confirmed its copy."
        )

    @property
    def destinations(self) -> tuple[str, ...]:
        return (self.to,) if self.to else ()

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
        return lambda properties, key: (
            destination(properties, key) if self.only.matches(properties) else None
        )

    def move(
        self, session: Session, progress: Progress | None, cancel: threading.Event | None
    ) -> Moved:
        if not self.only.active:
            result = Mover(
                session, self.source, self.route, self.limit, progress=progress, cancel=cancel
            ).run()
            return Moved(result, self._counts(result))
        return self._filtered(session, progress, cancel)

    def _filtered(
        self, session: Session, progress: Progress | None, cancel: threading.Event | None
    ) -> Moved:
        # Messages that do not match go back to the source; through a holding queue so that
        # the mover does not meet them again.
        matched = []

        def counting(properties, key):
            target = self.route(properties, key)
            if target is not None:
                matched.append(1)
            return target

        result, holding = move_through_holding(
            session, self.source, self.holding, self.limit, counting, progress=progress,
            cancel=cancel,
        )  # fmt: skip
        result.kept = result.moved - len(matched)
        result.moved = len(matched)
        if holding:
            result.stopped = f"some messages wait in holding queue {holding!r}"
        return Moved(result, self._counts(result), holding)

    def _counts(self, result: MoveResult) -> dict:
        counts = {"moved": result.moved, "failed": result.failed, "skipped": result.skipped}
        return counts | ({"kept": result.kept} if self.only.active else {})


def plan_requeue(
    session: Session,
    source: str,
    to: str | None,
    limit: int | None,
    only: RequeueFilter | None = None,
) -> RequeuePlan:
    ready = session.ready_count(source)
    only = only or RequeueFilter()
    most = at_most(ready, limit)
    return RequeuePlan(
        source=source,
        to=to,
        ready=ready,
        limit=most,
        only=only,
        holding=holding_queue_name("requeue", source) if only.active else None,
        # Into each message's x-death queue, the split is known only message by message.
        arrivals=[arrival(queue_rules(session, to), most)] if to else [],
    )
