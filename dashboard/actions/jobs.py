"""Long actions run in the background, so a page can show their progress, offer a stop button
and be reloaded without abandoning them half way (a move must never die with a page rerun)."""

import secrets
import threading
from collections.abc import Callable
from typing import Any

from dashboard.actions.mover import MoveResult
from dashboard.errors import WarrenError

# Every job of this process, by id: a page finds its job again after a rerun or a reload.
JOBS: dict[str, "Job"] = {}


class Job:
    def __init__(
        self,
        title: str,
        work: Callable[[Callable[[MoveResult], None], threading.Event], Any],
        total: int,
    ):
        self.id = secrets.token_hex(6)
        self.title = title
        self.total = total
        self.cancel = threading.Event()
        self.progress: MoveResult | None = None
        self.result: Any = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True, name=title)

    def start(self) -> "Job":
        JOBS[self.id] = self
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _report(self, progress: MoveResult) -> None:
        self.progress = progress

    def _run(self, work) -> None:
        try:
            self.result = work(self._report, self.cancel)
        except WarrenError as exc:
            self.error = str(exc)
        except Exception as exc:
            self.error = f"The job failed unexpectedly ({type(exc).__name__})."
