"""What every action that moves messages shares (requeue, republish): a plan that says what it
will touch before anything moves, and one audited run that reports exact counts."""

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from dashboard.actions.access import change
from dashboard.actions.audit import Entry, audit_log, count
from dashboard.actions.mover import MoveResult, Progress
from dashboard.actions.target_rules import Arrival, loss_sentence, refuse_loss
from dashboard.broker.session import Session

CHECKPOINT_SECONDS = 2.0


@dataclass
class Moved:
    """How a move ended: the mover's result, the counts the audit log and `--json` report, and
    the holding queue when messages wait there (a refusal or a stop between the two legs)."""

    result: MoveResult
    counts: dict
    holding: str | None = None
    # The ready count of each queue the plan named as its target, read after the move over
    # AMQP: what the broker holds, which a target's own limits may have cut.
    held_after: dict[str, int] = field(default_factory=dict)

    def doubled_words(self, source: str) -> str:
        """What a fault left in two places, or nothing."""
        doubled = self.result.may_be_duplicated
        if not doubled:
            return ""
        return (
            f" {count(doubled, 'message')} may be in both {source!r} and the target: their "
            "copies reached it before the fault, and the originals went back."
        )

    def held_words(self) -> str:
        return "".join(
            f" {queue!r} holds {ready:,} ready now." for queue, ready in self.held_after.items()
        )

    @property
    def clean(self) -> bool:
        return self.result.clean and self.holding is None

    @property
    def problem(self) -> str | None:
        """Why it is not clean, in words; None when it is."""
        if self.holding is not None:
            return f"messages left in holding queue {self.holding!r}"
        return None if self.result.clean else self.result.stopped


class MovePlan(BaseModel, ABC):
    """A move, said before it runs: at most `limit` of the `ready` messages of `source`; through
    `holding` when the mover would otherwise meet its own copies (named before, for the log)."""

    action: ClassVar[str]
    source: str
    ready: int
    limit: int
    holding: str | None = None
    # What each queue it writes into would do with the messages, by its own rules.
    arrivals: list[Arrival] = Field(default_factory=list)
    # At most this many copies a second (a redrive that does not flatten recovering consumers).
    rate: float | None = Field(default=None, gt=0)
    # What the last run of this action on this source left unclear (see `noting_earlier`).
    earlier: str | None = None

    @property
    def loses(self) -> int:
        return sum(arrival.lost for arrival in self.arrivals)

    @property
    def sentence(self) -> str:
        """What the move will do, and what its targets would do with it: the confirmation."""
        said = [self.what, *(into.sentence for into in self.arrivals if into.sentence)]
        said += [loss_sentence(self.loses)] if self.loses else []
        return " ".join(said + ([self.earlier] if self.earlier else []))

    @property
    @abstractmethod
    def what(self) -> str:
        """What the move will do."""

    @property
    def destinations(self) -> tuple[str, ...]:
        """The queues the move writes into, where the plan names them."""
        return ()

    @abstractmethod
    def parameters(self, vhost: str) -> dict:
        """What the audit log records about this move."""

    @abstractmethod
    def move(
        self, session: Session, progress: Progress | None, cancel: threading.Event | None
    ) -> Moved:
        """The move itself, unaudited: only `run_move` calls it."""


def run_move(
    session: Session,
    plan: MovePlan,
    actor: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
) -> Moved:
    """Run a confirmed plan with its audit record. `cancel` stops the taking of messages;
    those already taken are settled and counted. A loss by a target's own rules is refused
    unless `force`."""
    parameters = plan.parameters(session.vhost) | ({"force": True} if force else {})
    with change(session, actor, plan.action, plan.source, parameters) as entry:
        refuse_loss(plan.loses, force)
        try:
            moved = plan.move(session, _reporting(entry, progress), cancel)
        finally:
            session.changed(plan.source, *plan.destinations)
        doubled = moved.result.may_be_duplicated
        moved.counts |= {"may_be_duplicated": doubled} if doubled else {}
        # The queues the plan named, or those the copies went to through the default exchange.
        into = plan.destinations or tuple(
            key for exchange, key in moved.result.moved_to if not exchange and key != plan.source
        )
        held = {queue: session.ready_count_or_none(queue) for queue in into}
        moved.held_after = {queue: ready for queue, ready in held.items() if ready is not None}
        entry.counts = moved.counts | {
            f"ready:{queue}": ready for queue, ready in moved.held_after.items()
        }
        entry.outcome = "ok" if moved.clean else "stopped"
        entry.error = moved.problem
    return moved


def _reporting(entry: Entry, progress: Progress | None) -> Progress:
    """`progress`, and the counts so far into the audit record every few seconds: if the process
    dies, the next one marks the record interrupted with them (`AuditLog.mark_interrupted`)."""
    last = [0.0]

    def report(result: MoveResult) -> None:
        if progress is not None:
            progress(result)
        if time.monotonic() - last[0] >= CHECKPOINT_SECONDS:
            last[0] = time.monotonic()
            entry.counts = {"moved": result.moved, "failed": result.failed}
            entry.counts |= {"in_flight": result.in_flight} if result.in_flight else {}
            entry.checkpoint(required=False)

    return report


def noting_earlier(session: Session, plan: MovePlan) -> MovePlan:
    """The plan, with what the last run of its action on its source left in two places (a fault
    broke it): a rerun moves those messages again, so they may arrive twice."""
    record = audit_log(session.settings).last_unclean(plan.action, plan.source)
    if record is None:
        return plan
    when = datetime.fromtimestamp(record.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    doubled = record.counts.get("may_be_duplicated") or record.counts.get("in_flight")
    how_many = f"up to {count(doubled, 'message')}" if doubled else "an unknown number of messages"
    plan.earlier = (
        f"Note: the last {plan.action} from {plan.source!r} ({when}, by {record.actor}) ended "
        f"{record.outcome} with {how_many} perhaps in both {plan.source!r} and its target: this "
        "run moves them again, so those may arrive twice."
    )
    return plan


def at_most(ready: int, limit: int | None) -> int:
    """How many a move takes: all ready messages, or `limit` of them."""
    return ready if limit is None else min(limit, ready)
