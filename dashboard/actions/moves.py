"""What every action that moves messages shares (requeue, republish): a plan that says what it
will touch before anything moves, and one audited run that reports exact counts."""

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, Field

from dashboard.actions.access import change
from dashboard.actions.mover import MoveResult, Progress
from dashboard.actions.target_rules import Arrival, loss_sentence, refuse_loss
from dashboard.broker.session import Session


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

    @property
    def loses(self) -> int:
        return sum(arrival.lost for arrival in self.arrivals)

    @property
    def sentence(self) -> str:
        """What the move will do, and what its targets would do with it: the confirmation."""
        said = [self.what, *(into.sentence for into in self.arrivals if into.sentence)]
        return " ".join(said + ([loss_sentence(self.loses)] if self.loses else []))

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
            moved = plan.move(session, progress, cancel)
        finally:
            session.changed(plan.source, *plan.destinations)
        moved.held_after = {queue: session.ready_count(queue) for queue in plan.destinations}
        entry.counts = moved.counts | {
            f"ready:{queue}": ready for queue, ready in moved.held_after.items()
        }
        entry.outcome = "ok" if moved.clean else "stopped"
        entry.error = moved.problem
    return moved


def at_most(ready: int, limit: int | None) -> int:
    """How many a move takes: all ready messages, or `limit` of them."""
    return ready if limit is None else min(limit, ready)
