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
from dashboard.actions.moves import Moved, MovePlan, at_most, noting_earlier
from dashboard.actions.target_rules import (
    Arrival,
    arrival,
    arrival_from,
    queue_rules,
    way_back,
)
from dashboard.broker.session import Session
from dashboard.broker.sweep import Delivery, Sweep
from dashboard.errors import NotFound
from dashboard.reads.masking import masking_of
from dashboard.reads.queue_detail import queue_settings
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


# A requeue into each message's own queue counts the split in one pass up to this many.
SPLIT_PASS_MOST = 10_000


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
        masking = masking_of(session.settings)

        def route(properties, key, body):
            if self._held_back(properties):
                held_back[0] += 1
                # Through the holding queue a message with no destination goes back anyway.
                return None if filtered else ("", source)
            if filtered and not self.only.matches(masking, properties, key, body):
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
    plan = RequeuePlan(
        source=source,
        to=to,
        ready=ready,
        limit=most,
        only=only,
        priority=priority,
        rate=rate,
        hold_back_from=None if include_redriven else session.settings.max_redrives,
        holding=holding_queue_name("requeue", source) if only.active else None,
        arrivals=[arrival_from(session, source, to, most)] if to else [],
    )
    if to is None:
        plan.arrivals = _split_arrivals(session, plan)
    if plan.holding is not None:
        # Those not selected go back to the dead-letter queue through the holding queue.
        plan.arrivals.append(way_back(session, source, plan.holding, most))
    return noting_earlier(session, plan)


def _split_arrivals(session: Session, plan: RequeuePlan) -> list[Arrival]:
    """Into each message's own x-death queue: how many go where is known only from the
    messages, so one pass over them counts it (and their bytes), leaving them in place; then
    each queue's rules say what it does with its share. Not on a quorum queue, where the pass
    would count a delivery against each, nor past SPLIT_PASS_MOST (a plan is said at once)."""
    kind = queue_settings(session, plan.source).type
    if kind == "quorum" or plan.limit > SPLIT_PASS_MOST or plan.limit == 0:
        why = "a quorum queue" if kind == "quorum" else f"over {SPLIT_PASS_MOST:,} messages"
        return [_unknown_split(plan.source, why)]
    shares: dict[str, list[int]] = {}
    masking = masking_of(session.settings)

    def visit(delivery: Delivery) -> bool:
        properties = delivery.properties
        if plan._held_back(properties) or not plan.only.matches(
            masking, properties, delivery.routing_key, delivery.body
        ):
            return False
        target = back_to_where_it_died(properties, delivery.routing_key, delivery.body)
        if target is not None:
            share = shares.setdefault(target[1], [0, 0])
            share[0] += 1
            share[1] += len(delivery.body)
        return False

    Sweep(session, plan.source, plan.limit, visit).run()
    return [_share(session, queue, n, size) for queue, (n, size) in sorted(shares.items())]


def _share(session: Session, queue: str, incoming: int, size: int) -> Arrival:
    try:
        rules = queue_rules(session, queue)
    except NotFound:
        return Arrival(
            queue=queue, incoming=incoming, excess=0, lost=0,
            sentence=(
                f"{count(incoming, 'message')} died in queue {queue!r}, which no longer exists: "
                "the move stops at the first of them (its copy comes back), which stays."
            ),
        )  # fmt: skip
    return arrival(rules, incoming, incoming_bytes=size)


def _unknown_split(source: str, why: str) -> Arrival:
    return Arrival(
        queue=source, incoming=0, excess=0, lost=0,
        sentence=(
            f"What each message's own queue does with it is not counted beforehand ({source!r} "
            f"is {why}); the result gives what each holds afterwards."
        ),
    )  # fmt: skip
