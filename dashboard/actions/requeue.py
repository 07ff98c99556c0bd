"""Requeue dead letters: move messages from a dead-letter queue back to the queue each one died
in (its first `x-death` entry), or to a chosen queue, through the mover (at least once)."""

import copy
import threading

from pika.spec import BasicProperties

from dashboard.actions.audit import count
from dashboard.actions.mover import (
    Mover,
    MoveResult,
    Progress,
    holding_queue_name,
    move_through_holding,
    to_queue,
)
from dashboard.actions.moves import Moved, MovePlan, at_most
from dashboard.actions.target_rules import arrival, queue_rules
from dashboard.broker.session import Session
from dashboard.reads.selection import REDRIVES_HEADER, Selection, first_death, redrives_of


def back_to_where_it_died(properties, _routing_key: str, _body: bytes) -> tuple[str, str] | None:
    """The queue of the message's first `x-death` entry, through the default exchange."""
    queue = first_death(properties.headers or {}).get("queue")
    if isinstance(queue, str | bytes) and queue:
        return "", queue.decode() if isinstance(queue, bytes) else queue
    return None


def counting_a_redrive(properties: BasicProperties) -> BasicProperties:
    """The copy carries how many times Warren redrove it, this time included."""
    changed = copy.copy(properties)
    headers = dict(properties.headers or {})
    headers[REDRIVES_HEADER] = redrives_of(headers) + 1
    changed.headers = headers
    return changed


class RequeuePlan(MovePlan):
    """What a requeue will touch, said before it runs. Filtered requeues pass through a holding
    queue. Each copy counts its redrive in a header; a message redriven `hold_back_from` times or
    more goes back to the end of the source instead (None: none is held back)."""

    action = "requeue"
    to: str | None
    only: Selection = Selection()
    # A new priority for the copies (republish with priority from a dead-letter queue).
    priority: int | None = None
    hold_back_from: int | None = None

    @property
    def what(self) -> str:
        destination = f"queue {self.to!r}" if self.to else "the queue each one died in (x-death)"
        ready = count(self.ready, "ready message")
        how = "".join(
            [
                f" with priority {self.priority}" if self.priority is not None else "",
                f" at most {self.rate:g} a second" if self.rate else "",
            ]
        )
        held = (
            f" Those Warren redrove {self.hold_back_from} times or more are held back, at the "
            f"end of {self.source!r}."
            if self.hold_back_from is not None
            else ""
        )
        if self.only.active:
            return (
                f"Requeue looks at up to {self.limit:,} of the {ready} of "
                f"{self.source!r}, through holding queue {self.holding!r}: those with "
                f"{self.only.words} go to {destination}{how}, the others back to "
                f"{self.source!r}; each message leaves a queue only after the broker confirmed "
                f"its copy.{held}"
            )
        return (
            f"Requeue moves up to {self.limit:,} of the {ready} of "
            f"{self.source!r} to {destination}{how}, each removed from {self.source!r} only "
            f"after the broker confirmed its copy.{held}"
        )

    @property
    def destinations(self) -> tuple[str, ...]:
        return (self.to,) if self.to else ()

    def parameters(self, vhost: str) -> dict:
        """What the audit log records about this requeue."""
        given = {
            "priority": self.priority,
            "rate": self.rate,
            "hold_back_from": self.hold_back_from,
        }
        return (
            {"to": self.to, "limit": self.limit, "vhost": vhost}
            | {key: value for key, value in given.items() if value is not None}
            | (
                {"filter": self.only.model_dump(exclude_defaults=True), "holding": self.holding}
                if self.only.active
                else {}
            )
        )

    def _held_back(self, properties) -> bool:
        return (
            self.hold_back_from is not None
            and redrives_of(properties.headers or {}) >= self.hold_back_from
        )

    def _transform(self, properties: BasicProperties, target: tuple[str, str]) -> BasicProperties:
        if target == ("", self.source):
            return properties
        changed = counting_a_redrive(properties)
        if self.priority is not None:
            changed.priority = self.priority
        return changed

    def move(
        self, session: Session, progress: Progress | None, cancel: threading.Event | None
    ) -> Moved:
        destination = to_queue(self.to) if self.to else back_to_where_it_died
        held_back = [0]
        source = self.source
        filtered = self.only.active

        def route(properties, key, body):
            if self._held_back(properties):
                held_back[0] += 1
                # Through the holding queue a message with no destination goes back anyway.
                return None if filtered else ("", source)
            if filtered and not self.only.matches(properties, key, body):
                return None
            return destination(properties, key, body)

        holding = None
        if filtered:
            result, holding = move_through_holding(
                session, source, self.holding, self.limit, route, self._transform, progress,
                cancel, self.rate,
            )  # fmt: skip
            if holding:
                result.stopped = f"some messages wait in holding queue {holding!r}"
        else:
            result = Mover(
                session, source, route, self.limit, self._transform, rate=self.rate,
                progress=progress, cancel=cancel,
            ).run()  # fmt: skip
        # Those that went back to the source were kept (no match) or held back.
        back = result.moved_to.get(("", source), 0)
        result.held_back = min(held_back[0], back)
        result.kept = back - result.held_back
        result.moved -= back
        return Moved(result, self._counts(result), holding)

    def _counts(self, result: MoveResult) -> dict:
        counts = {"moved": result.moved, "failed": result.failed, "skipped": result.skipped}
        return (
            counts
            | ({"kept": result.kept} if self.only.active else {})
            | ({"held_back": result.held_back} if self.hold_back_from is not None else {})
        )


def plan_requeue(
    session: Session,
    source: str,
    to: str | None,
    limit: int | None,
    only: Selection | None = None,
    priority: int | None = None,
    rate: float | None = None,
    include_redriven: bool = False,
) -> RequeuePlan:
    ready = session.ready_count(source)
    only = only or Selection()
    most = at_most(ready, limit)
    return RequeuePlan(
        source=source,
        to=to,
        ready=ready,
        limit=most,
        only=only,
        priority=priority,
        rate=rate,
        hold_back_from=None if include_redriven else session.settings.max_redrives,
        holding=holding_queue_name("requeue", source) if only.active else None,
        # Into each message's x-death queue, the split is known only message by message.
        arrivals=[arrival(queue_rules(session, to), most)] if to else [],
    )
