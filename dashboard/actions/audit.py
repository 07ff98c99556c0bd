"""The audit log: every admin action, refused and failed ones too, in its SQLite file or in the
team's PostgreSQL database (dashboard/database.py).

An action is recorded before it starts and completed when it ends, so a crash leaves a row with
no end. If that first write fails, the action does not run: Warren never changes a broker
without a record of it (WARREN_AUDIT_DB, WARREN_DATABASE_URL).
"""

import contextlib
import csv
import functools
import io
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from dashboard.database import Database, DatabaseError, Store, Transaction
from dashboard.errors import ReadOnly, WarrenError
from dashboard.settings import Settings

ACTIONS = """
CREATE TABLE IF NOT EXISTS actions (
    id {id},
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    parameters TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    started_at {real} NOT NULL,
    ended_at {real},
    outcome TEXT,
    counts TEXT,
    error TEXT,
    vhost TEXT,
    owner TEXT
)"""


def _tables(db: Transaction) -> None:
    """The actions table. A file from before the versions gets the columns added since: the
    vhost an action acted in (so that each user sees the records of the vhosts it may read;
    older records take it from their parameters where they named it), and which process runs
    it (host:pid:start, so that the next Warren process on that host can tell an action whose
    process died from one still running)."""
    columns = db.columns("actions")
    db.execute(ACTIONS)
    db.execute("CREATE INDEX IF NOT EXISTS actions_by_time ON actions (started_at)")
    if columns and "vhost" not in columns:
        db.execute("ALTER TABLE actions ADD COLUMN vhost TEXT")
        db.execute("UPDATE actions SET vhost = json_extract(parameters, '$.vhost')")
    if columns and "owner" not in columns:
        db.execute("ALTER TABLE actions ADD COLUMN owner TEXT")


def _alive_at(db: Transaction) -> None:
    """When a running action's process last said it was alive, by the database's clock: a
    console on another host can tell a dead one from a slow one (a pid says nothing there)."""
    db.execute("ALTER TABLE actions ADD COLUMN alive_at {real}")


AUDIT = Store("audit", [_tables, _alive_at])
# A running action's process says it is alive this often; another host's action that has not
# for SILENT_SECONDS is taken for dead (a pause of a few beats, a slow database, is not).
ALIVE_SECONDS = 10
SILENT_SECONDS = 60
INTERRUPTED = "interrupted"
# Outcomes after which a rerun may meet messages that are in two places.
UNCLEAN = ("interrupted", "stopped", "failed")


class AuditRecord(BaseModel):
    id: int
    actor: str
    action: str
    target: str
    parameters: dict
    dry_run: bool
    vhost: str | None
    started_at: float
    ended_at: float | None
    outcome: str | None
    counts: dict
    error: str | None


class Entry:
    """The action in progress: what it reports, written when it ends, and on `checkpoint`."""

    def __init__(self, save: "Callable[[Entry], None] | None" = None) -> None:
        self.outcome = "ok"
        self.counts: dict = {}
        self.error: str | None = None
        self._save = save

    def checkpoint(self, required: bool = True) -> None:
        """Write the counts so far: before a step that must not happen unrecorded (a discard
        records the ids it is about to delete; a failure to write refuses the step), or as
        progress (`required=False`: a failure to write is let pass)."""
        if self._save is None:
            return
        try:
            self._save(self)
        except WarrenError:
            if required:
                raise


class AuditLog:
    """The audit log in `location`: a SQLite file, or a PostgreSQL URL."""

    def __init__(self, location: Path | str):
        self.database = Database(location, AUDIT)

    @contextmanager
    def action(
        self,
        actor: str,
        action: str,
        target: str,
        parameters: dict,
        dry_run: bool,
        vhost: str | None = None,
    ) -> Iterator[Entry]:
        """Record `action` (in `vhost`) before it runs and its outcome after; a failure is
        recorded too."""
        values = (
            actor, action, target, json.dumps(parameters), int(dry_run), vhost, time.time(),
            this_process(),
        )  # fmt: skip
        try:
            with self.database.transaction() as db:
                row_id = db.execute(
                    "INSERT INTO actions (actor, action, target, parameters, dry_run, vhost,"
                    " started_at, owner, alive_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {now})"
                    " RETURNING id",
                    values,
                ).fetchone()[0]
        except DatabaseError as exc:
            raise self._unwritable(exc, f"{action} {target!r}: nothing was changed") from None
        entry = Entry(lambda entry: self._checkpoint(row_id, action, target, entry))
        alive = threading.Event()
        threading.Thread(target=self._beat, args=(row_id, alive), daemon=True).start()
        try:
            yield entry
        except ReadOnly as exc:
            entry.outcome, entry.error = "refused", str(exc)
            raise
        except WarrenError as exc:
            entry.outcome, entry.error = "failed", str(exc)
            raise
        except BaseException as exc:
            entry.outcome, entry.error = "failed", type(exc).__name__
            raise
        finally:
            alive.set()
            self._finish(row_id, entry)

    def _beat(self, row_id: int, ended: threading.Event) -> None:
        """Says the action's process is alive, every ALIVE_SECONDS until it ends. A beat that
        cannot be written is let pass: the action was recorded, and the next beat may be."""
        while not ended.wait(ALIVE_SECONDS):
            with contextlib.suppress(DatabaseError), self.database.transaction() as db:
                db.execute(
                    # An action marked interrupted while its database was away (no beat could
                    # be written) is running after all: it takes its record back.
                    "UPDATE actions SET alive_at = {now}, ended_at = NULL, outcome = NULL, "
                    "error = NULL WHERE id = ? AND (ended_at IS NULL OR outcome = ?)",
                    (row_id, INTERRUPTED),
                )

    def _checkpoint(self, row_id: int, action: str, target: str, entry: Entry) -> None:
        try:
            with self.database.transaction() as db:
                db.execute(
                    "UPDATE actions SET counts = ? WHERE id = ?", (json.dumps(entry.counts), row_id)
                )
        except DatabaseError as exc:
            raise self._unwritable(exc, f"go on with {action} {target!r}") from None

    def _unwritable(self, exc: BaseException, undone: str) -> WarrenError:
        return WarrenError(
            f"The audit log at {self.database.where} cannot be written ({exc}), so Warren did not "
            f"{undone}."
        )

    def _finish(self, row_id: int, entry: Entry) -> None:
        # The action already happened: a failure to write its end must not hide its result.
        with contextlib.suppress(DatabaseError), self.database.transaction() as db:
            db.execute(
                "UPDATE actions SET ended_at = ?, outcome = ?, counts = ?, error = ? WHERE id = ?",
                (time.time(), entry.outcome, json.dumps(entry.counts), entry.error, row_id),
            )

    def mark_interrupted(self) -> int:
        """Mark the actions whose process ended before they did as interrupted, with the counts
        of their last report; how many. This host's and pid namespace's: their process is gone.
        Another's: their process has not said it is alive for SILENT_SECONDS."""
        if not self.database.exists():
            return 0
        place = this_place()
        # An audit log that cannot be read leaves the marking to the next that notices.
        with contextlib.suppress(DatabaseError), self.database.transaction() as db:
            rows = db.execute(
                "SELECT id, owner, counts, {now} - COALESCE(alive_at, started_at) FROM actions "
                "WHERE ended_at IS NULL"
            ).fetchall()
            marked = 0
            for row_id, owner, counts, silent in rows:
                here = (owner or "").startswith(f"{place}:")
                if (here and _gone(owner)) or (not here and silent > SILENT_SECONDS):
                    marked += db.execute(
                        "UPDATE actions SET ended_at = ?, outcome = ?, error = ? "
                        "WHERE id = ? AND ended_at IS NULL",
                        (time.time(), INTERRUPTED, _interrupted_words(owner, counts, here), row_id),
                    ).rowcount
            return marked
        return 0

    def interrupted_on(self, targets: set[str], since: float) -> list[AuditRecord]:
        """The actions on `targets` marked interrupted that started after `since`."""
        return [
            record
            for record in self.records(200)
            if record.outcome == INTERRUPTED
            and record.target in targets
            and record.started_at >= since
        ]

    def last_unclean(self, action: str, target: str) -> AuditRecord | None:
        """The latest `action` on `target` if it ended unclean (interrupted, stopped, failed)
        with messages perhaps in two places; None otherwise."""
        try:
            recent = self.records(50)
        except DatabaseError:
            # Said by the action itself, which refuses to run without its record.
            return None
        latest = [r for r in recent if (r.action, r.target) == (action, target)]
        if not latest or latest[0].dry_run or latest[0].outcome not in UNCLEAN:
            return None
        record = latest[0]
        doubled = record.counts.get("may_be_duplicated") or record.counts.get("in_flight")
        return record if doubled or record.outcome == INTERRUPTED else None

    def records(self, limit: int = 500, vhosts: set[str] | None = None) -> list[AuditRecord]:
        """The latest actions, newest first: all of them, or those in `vhosts`."""
        # An empty `IN ()` is not SQL everywhere: no vhost, no record.
        if vhosts is not None and not vhosts:
            return []
        where, values = "", [limit]
        if vhosts is not None:
            where = f"WHERE vhost IN ({', '.join('?' * len(vhosts))})"
            values = [*sorted(vhosts), limit]
        with self.database.transaction() as db:
            rows = db.execute(
                "SELECT id, actor, action, target, parameters, dry_run, vhost, started_at,"
                f" ended_at, outcome, counts, error FROM actions {where} ORDER BY id DESC LIMIT ?",
                values,
            ).fetchall()
        return [
            AuditRecord(
                id=row[0],
                actor=row[1],
                action=row[2],
                target=row[3],
                parameters=json.loads(row[4]),
                dry_run=bool(row[5]),
                vhost=row[6],
                started_at=row[7],
                ended_at=row[8],
                outcome=row[9],
                counts=json.loads(row[10]) if row[10] else {},
                error=row[11],
            )
            for row in rows
        ]


NARROW_SPACE = "\u202f"


def readable(values: dict) -> str:
    """A record's counts or parameters as a person reads them: `purged 259`, `vhost /,
    priority 9`, `routing key acme`, nested values in parentheses; a value not given (None) is
    left out. Thousands are grouped with a narrow space (`moved 1 200, failed 0`): a comma
    there would read as the next value."""
    return ", ".join(
        f"{_readable_key(key)} {_readable_value(value)}"
        for key, value in values.items()
        if value is not None
    )


def _readable_key(key: str) -> str:
    """`dead_letters` -> `dead letters`; a count per queue, `ready:<queue>` -> `ready in <queue>`
    (the queue's name as it is)."""
    name, per_queue, queue = key.partition(":")
    return name.replace("_", " ") + (f" in {queue}" if per_queue else "")


def _readable_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", NARROW_SPACE)
    if isinstance(value, dict):
        return f"({readable(value)})"
    if isinstance(value, list):
        return f"({', '.join(_readable_value(item) for item in value) or 'none'})"
    return str(value)


def count(number: int, noun: str) -> str:
    """`1 message`, `2 messages`: a number with its noun, in the plural when it is not one."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def records_csv(records: list[AuditRecord]) -> str:
    """The records as CSV, parameters and counts as JSON in their columns, no cell a formula."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(AuditRecord.model_fields))
    for record in records:
        row = record.model_dump()
        writer.writerow(
            _inert(json.dumps(value) if isinstance(value, dict) else value)
            for value in row.values()
        )
    return out.getvalue()


# A spreadsheet runs a cell that begins with one of these as a formula (`=HYPERLINK(...)`).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value):
    """A cell a spreadsheet shows as text: a leading quote before what would start a formula."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def audit_log(settings: Settings) -> AuditLog:
    """The audit log the settings name: the team's database, else the file."""
    return _audit_log_at(settings.database(settings.audit_db))


@functools.lru_cache(maxsize=16)
def _audit_log_at(location: Path | str) -> AuditLog:
    # One per database and process: its schema version is read once, not on every action.
    return AuditLog(location)


def database_problem(settings: Settings) -> str | None:
    """What a console shows while the audit log's database cannot be reached; None when it can."""
    log = audit_log(settings)
    try:
        log.records(1)
    except DatabaseError as exc:
        return (
            f"The audit log at {log.database.where} cannot be reached ({exc}). Every action is "
            "refused until it is back: each is recorded before it starts. Everything else goes "
            "on, the overview without its history."
        )
    return None


def this_process() -> str:
    """place:pid:start, the start in clock ticks after boot (a pid is reused, a start is not)."""
    return f"{this_place()}:{os.getpid()}:{_started(os.getpid())}"


def this_place() -> str:
    """Where this process's pids mean something: its host and its pid namespace (two
    containers of one pod share a host name, not their pids)."""
    try:
        namespace = "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit())
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def _started(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The fields after the command name (which may hold spaces), the start being the 22nd.
    return stat.rsplit(")", 1)[1].split()[19]


def _gone(owner: str) -> bool:
    _host, pid, started = owner.rsplit(":", 2)
    return not pid.isdigit() or _started(int(pid)) != started


def _interrupted_words(owner: str | None, counts: str | None, here: bool) -> str:
    place, pid, _ = (owner or "unknown:?:").rsplit(":", 2)
    host = place.split("/")[0]
    known = json.loads(counts) if counts else {}
    in_flight = known.get("in_flight")
    doubled = (
        f"; up to {in_flight:,} messages in flight then may be in both places" if in_flight else ""
    )
    how = (
        "ended before it finished"
        if here
        else f"on {host} stopped saying it was alive for {SILENT_SECONDS} s"
    )
    return (
        f"The process running it (pid {pid}) {how}: the counts are those of its last "
        f"report{doubled}."
    )
