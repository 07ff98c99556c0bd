"""The audit log and the history on both kinds of database, a SQLite file and a real PostgreSQL
(WARREN_DATABASE_URL): the same records and the same answers, a schema version recorded per
store, migrations that consoles starting at once run once, an action whose process died marked
interrupted, and a database that is gone: the action refused with a sentence, nothing run."""

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard.actions import audit
from dashboard.actions.audit import AUDIT, AuditLog
from dashboard.database import Database, DatabaseError
from dashboard.errors import WarrenError
from dashboard.local.rabbitmq import free_port
from dashboard.reads.history import History, open_history
from dashboard.reads.models import Overview, TenantRow, Totals
from dashboard.settings import SettingsError, load_settings
from pages.components.formatting import literal
from tests.support.helpers import cli_environment, run_cli, tenant_with_messages, wait_until
from tests.support.watching import WatchProcess

DIES_MID_ACTION = """
import sys, time
from pathlib import Path
from dashboard.actions.audit import AuditLog
where = sys.argv[1]
with AuditLog(where if "://" in where else Path(where)).action(
    "bob (test)", "requeue", "q.dlq", {"vhost": "/"}, False, "/"
) as entry:
    entry.counts = {"moved": 5, "in_flight": 2}
    entry.checkpoint()
    print("moving", flush=True)
    time.sleep(120)
"""


def test_an_action_is_recorded_before_it_runs_with_its_progress_and_its_end(database):
    log = AuditLog(database)
    with log.action("ann (test)", "purge", "q.acme", {"vhost": "/"}, False, "/") as entry:
        [before] = log.records()
        entry.counts = {"purged": 3}
        entry.checkpoint()
        [during] = log.records()
    [after] = log.records()

    assert (before.action, before.target, before.ended_at, before.outcome) == (
        "purge", "q.acme", None, None,
    )  # fmt: skip
    assert (during.counts, during.outcome) == ({"purged": 3}, None)
    assert (after.id, after.outcome, after.counts, after.vhost) == (
        before.id,
        "ok",
        {"purged": 3},
        "/",
    )
    assert after.ended_at >= after.started_at
    assert [r.id for r in log.records(vhosts={"/"})] == [after.id]
    assert log.records(vhosts={"eu"}) == log.records(vhosts=set()) == []


def test_an_action_whose_process_died_is_marked_interrupted_with_its_last_counts(database):
    child = subprocess.Popen(
        [sys.executable, "-c", DIES_MID_ACTION, str(database)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "moving\n"
    child.kill()
    child.wait()
    log = AuditLog(database)

    assert log.mark_interrupted() == 1
    [record] = log.records()
    assert (record.action, record.outcome, record.counts) == (
        "requeue", "interrupted", {"moved": 5, "in_flight": 2},
    )  # fmt: skip
    assert f"(pid {child.pid}) ended before it finished" in record.error
    assert "up to 2 messages in flight then may be in both places" in record.error
    assert log.mark_interrupted() == 0


# Another host's process: its name, and beats every 0.2 s.
ELSEWHERE = """
import socket, sys, time
from pathlib import Path
from dashboard.actions import audit
socket.gethostname = lambda: "web-2"
audit.ALIVE_SECONDS = 0.2
where = sys.argv[1]
with audit.AuditLog(where if "://" in where else Path(where)).action(
    "carol (test)", "republish", "q.acme", {}, False, "/"
) as entry:
    entry.counts = {"republished": 40}
    entry.checkpoint()
    print("republishing", flush=True)
    time.sleep(120)
"""


def test_another_host_s_action_is_interrupted_once_its_process_stops_beating(database, monkeypatch):
    monkeypatch.setattr(audit, "SILENT_SECONDS", 1.5)
    child = subprocess.Popen(
        [sys.executable, "-c", ELSEWHERE, str(database)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "republishing\n"
    log = AuditLog(database)
    time.sleep(2.5)
    # Its process beats, on a host whose pids say nothing here: running, not interrupted.
    assert log.mark_interrupted() == 0
    child.kill()
    child.wait()

    wait_until(lambda: log.mark_interrupted() == 1, timeout=10, what="the action marked")
    [record] = log.records()
    assert (record.outcome, record.counts) == ("interrupted", {"republished": 40})
    assert f"(pid {child.pid}) on web-2 stopped saying it was alive for 1.5 s" in record.error


def test_an_action_marked_interrupted_while_it_runs_takes_its_record_back(database, monkeypatch):
    """As after a database outage longer than SILENT_SECONDS, when no beat could be written."""
    child = subprocess.Popen(
        [sys.executable, "-c", ELSEWHERE, str(database)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "republishing\n"
        log = AuditLog(database)
        monkeypatch.setattr(audit, "SILENT_SECONDS", -1)
        assert log.mark_interrupted() == 1

        [back] = wait_until(
            lambda: [r for r in log.records() if r.outcome is None], what="the record taken back"
        )
        assert (back.ended_at, back.error, back.counts) == (None, None, {"republished": 40})
    finally:
        child.kill()
        child.wait()


def test_the_watcher_notices_a_console_killed_mid_action(broker, postgres, tmp_path):
    url = postgres.create_database("watcher_notices")
    child = subprocess.Popen(
        [sys.executable, "-c", DIES_MID_ACTION, url], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "moving\n"
    child.kill()
    child.wait()

    watcher = WatchProcess(cli_environment(broker, WARREN_DATABASE_URL=url), tmp_path)
    try:
        wait_until(
            lambda: AuditLog(url).records()[0].outcome == "interrupted",
            what="the watcher to mark the action interrupted",
        )
    finally:
        assert watcher.stop() == 0


def test_an_action_in_progress_shows_with_its_counts_on_another_console(postgres, console):
    url = postgres.create_database("other_console")
    with AuditLog(url).action("dana (test)", "requeue", "q.acme.dlq", {}, False, "/") as entry:
        entry.counts = {"moved": 300, "failed": 0}
        entry.checkpoint()
        app = console(page="pages/audit.py", WARREN_DATABASE_URL=url)

    assert not app.exception
    shown = app.dataframe[0].value[["actor", "action", "outcome", "counts"]].values.tolist()
    assert shown == [["dana (test)", "requeue", None, "moved 300, failed 0"]]


def _poll(at: float, counts: dict[str, tuple[int, int, int, int | None]]) -> tuple:
    rows = [
        TenantRow(
            tenant=queue, vhost="/", queue=queue, ready=ready, unacked=unacked,
            total=ready + unacked, consumers=1, queue_type="classic", acks=acks,
            dead_letters=dead,
        )
        for queue, (ready, unacked, acks, dead) in counts.items()
    ]  # fmt: skip
    totals = Totals(tenants=len(rows), queues=len(rows), ready=0, unacked=0, total=0, consumers=1)
    overview = Overview(
        vhost="/", exchange="x", rows=rows, totals=totals, fetched_at=datetime.now(UTC)
    )
    return overview, at


# Polls 10 s apart, across two minutes: a backlog that builds, a queue that holds its messages
# unacked at a standing ack count, dead letters that arrive, a queue that goes away.
POLLS = [
    {"a": (0, 0, 1, None), "b": (0, 2, 5, 0), "c": (1, 0, 0, 0)},
    {"a": (3, 0, 1, None), "b": (0, 2, 5, 0), "c": (1, 0, 0, 1)},
    {"a": (6, 1, 2, None), "b": (0, 2, 5, 0), "c": (1, 0, 0, 4)},
    {"a": (9, 1, 2, None), "b": (0, 2, 5, 0)},
    {"a": (9, 1, 2, None), "b": (0, 2, 5, 0)},
    {"a": (12, 0, 3, None), "b": (0, 2, 5, 0)},
    {"a": (15, 0, 3, None), "b": (0, 2, 5, 0)},
    {"a": (0, 0, 9, None), "b": (0, 2, 5, 0)},
]
START = 60 * 30_000.0 + 5


def _answers(history: History) -> dict:
    since = START - 1
    return {
        "series": [history.series("/", queue, since) for queue in "abc"],
        "recent": history.recent("/", since),
        "silences": history.held_silences("/", {"a": 9, "b": 5}, since),
        "backlogs": history.backlogs("/", ["a", "b", "c"], START + 15),
        "dead letters": history.first_counting("/", ["a", "b", "c"], since, "dead_letters"),
        "trends": history.ready_trends("/", since, START + 120, 4),
    }


def test_the_same_polls_give_the_same_history_on_either_database(postgres, tmp_path):
    answers = []
    for where in (tmp_path / "h.sqlite", postgres.create_database("same_history")):
        history = History(where, 86400, "http://broker")
        for number, counts in enumerate(POLLS):
            history.record(*_poll(START + 10 * number, counts))
        answers.append(_answers(history))

    assert answers[0] == answers[1]
    found = answers[1]
    # b's counts stand still: its first poll, and the first poll of the next minute.
    assert [[s.at - START for s in series] for series in found["series"]] == [
        [0, 10, 20, 30, 40, 50, 60, 70], [0, 60], [0, 10, 20],
    ]  # fmt: skip
    assert found["silences"] == {"a": None, "b": (START, True)}
    assert found["backlogs"] == {"c": (START + 20, True)}
    assert [(q, s.at, s.dead_letters) for q, s in found["dead letters"].items()] == [
        ("b", START, 0), ("c", START, 0),
    ]  # fmt: skip
    assert found["trends"] == {
        "a": [0, None, 15, None], "b": [0, None, 0, None], "c": [1, None, None, None],
    }  # fmt: skip


def test_each_store_records_its_schema_version_and_a_newer_one_is_refused(database):
    AuditLog(database).records()
    History(database, 3600, "http://broker")
    with Database(database, AUDIT).transaction() as db:
        versions = db.execute("SELECT store, version FROM warren_schema ORDER BY store").fetchall()
        db.execute("UPDATE warren_schema SET version = 7 WHERE store = 'audit'")

    assert [tuple(row) for row in versions] == [("audit", 2), ("history", 1)]
    with pytest.raises(DatabaseError) as caught:
        AuditLog(database).records()
    assert "were written by a newer Warren (schema 7; this one knows up to 2)" in str(caught.value)


def test_consoles_starting_at_once_make_a_new_database_once(postgres):
    url = postgres.create_database("at_once")
    problems = []

    def start() -> None:
        try:
            History(url, 3600, "http://broker")
            AuditLog(url).records()
        except WarrenError as exc:
            problems.append(str(exc))

    starting = [threading.Thread(target=start) for _ in range(6)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()

    assert problems == []
    with Database(url, AUDIT).transaction() as db:
        versions = db.execute("SELECT store, version FROM warren_schema ORDER BY store").fetchall()
    assert [tuple(row) for row in versions] == [("audit", 2), ("history", 1)]


def test_a_database_that_is_gone_refuses_the_action_and_keeps_its_password(settings_for):
    port = free_port()
    url = f"postgresql://warren:s3cret@127.0.0.1:{port}/warren"
    ran = []

    log = AuditLog(url)
    with pytest.raises(WarrenError) as caught, log.action("ann", "purge", "q.acme", {}, False):
        ran.append("purged")

    assert ran == []
    sentence = str(caught.value)
    assert sentence.startswith(f"The audit log at postgresql://127.0.0.1:{port}/warren cannot be")
    assert sentence.endswith("so Warren did not purge 'q.acme': nothing was changed.")
    assert "s3cret" not in sentence
    # Reads go on without a history.
    assert open_history(settings_for(database_url=url)) is None


def test_the_database_url_must_be_postgresql():
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url="mysql://warren@db/warren")
    assert str(caught.value) == (
        "Invalid setting WARREN_DATABASE_URL: expected a postgresql or postgres URL with a host "
        "name."
    )


def test_the_cli_audits_a_change_in_the_team_database(broker, postgres, unique, tmp_path):
    url = postgres.create_database("cli_audit")
    exchange, tenant = unique("tenants"), unique("acme")
    file = tmp_path / "audit.sqlite"

    bound = run_cli(
        broker, file, "bind", "--exchange", exchange, "--tenant", tenant, "--yes",
        WARREN_DATABASE_URL=url,
    )  # fmt: skip
    listed = run_cli(broker, file, "audit", "--json", WARREN_DATABASE_URL=url)

    assert bound.returncode == 0, bound.stderr
    assert [(r.action, r.target, r.outcome) for r in AuditLog(url).records()] == [
        ("bind", tenant, "created")
    ]
    assert [record["target"] for record in json.loads(listed.stdout)] == [tenant]
    # The file of WARREN_AUDIT_DB is not where the team's records go.
    assert not file.exists()


def test_a_database_that_is_gone_is_a_banner_and_the_overview_goes_on(channel, unique, console):
    exchange, queue = unique("tenants"), unique("acme")
    tenant_with_messages(channel, exchange, "acme", queue, 3)
    url = f"postgresql://warren:s3cret@127.0.0.1:{free_port()}/warren"

    app = console(WARREN_TENANT_EXCHANGE=exchange, WARREN_DATABASE_URL=url)

    assert not app.exception
    [banner] = [error.value for error in app.error]
    assert banner.startswith(literal(f"The audit log at {url.replace('warren:s3cret@', '')}"))
    assert banner.endswith(
        literal(
            "Every action is refused until it is back: each is recorded before it starts. "
            "Everything else goes on, the overview without its history."
        )
    )
    assert queue in app.dataframe[0].value["queue"].tolist()


# One writer of a team: `actions` audited actions with a progress report each, and `polls`
# history polls of `queues` queues whose counts all change every poll, at moments of its own.
WRITER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from dashboard.actions.audit import AuditLog
from dashboard.reads.history import History
from dashboard.reads.models import Overview, TenantRow, Totals
where, name, actions, polls, queues, offset = sys.argv[1:]
location = where if "://" in where else Path(where)
log, history = AuditLog(location), History(location, 86400, "http://broker")
totals = Totals(tenants=1, queues=1, ready=0, unacked=0, total=0, consumers=1)
for number in range(max(int(actions), int(polls))):
    if number < int(actions):
        with log.action(name, "requeue", f"q.{name}.{number}", {}, False, "/") as entry:
            entry.counts = {"moved": number}
            entry.checkpoint()
    if number < int(polls):
        rows = [
            TenantRow(tenant=f"t{q}", vhost="/", queue=f"q{q}", ready=number, unacked=0,
                      total=number, consumers=1, queue_type="classic", acks=number,
                      dead_letters=0)
            for q in range(int(queues))
        ]
        overview = Overview(vhost="/", exchange="x", rows=rows, totals=totals,
                            fetched_at=datetime.now(UTC))
        history.record(overview, at=1_000_000 + 10 * number + float(offset))
"""
WRITER_ACTIONS, WRITER_POLLS, WRITER_QUEUES = 40, 40, 200


def test_two_consoles_and_a_watcher_writing_at_once_lose_and_duplicate_nothing(database):
    writers = [
        ("console-1", WRITER_ACTIONS, "0.1"),
        ("console-2", WRITER_ACTIONS, "0.2"),
        ("watcher", 0, "0.3"),
    ]
    started = time.monotonic()
    arguments = [str(WRITER_POLLS), str(WRITER_QUEUES)]
    running = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(database), name, str(actions), *arguments, offset]
        )
        for name, actions, offset in writers
    ]
    assert [process.wait(timeout=300) for process in running] == [0, 0, 0]
    took = time.monotonic() - started

    records = AuditLog(database).records(limit=1000)
    assert len({record.id for record in records}) == len(records) == 2 * WRITER_ACTIONS
    assert sorted((r.actor, r.target, r.outcome, r.counts["moved"]) for r in records) == sorted(
        (name, f"q.{name}.{number}", "ok", number)
        for name, actions, _ in writers
        for number in range(actions)
    )
    samples = History(database, 86400, "http://broker").recent("/", 0)
    assert sorted(samples) == sorted(f"q{q}" for q in range(WRITER_QUEUES))
    for queue_samples in samples.values():
        assert [(s.at, s.ready) for s in queue_samples] == sorted(
            (1_000_000 + 10 * number + float(offset), number)
            for number in range(WRITER_POLLS)
            for _, _, offset in writers
        )
    # The figures of the closing note.
    kind = "SQLite" if isinstance(database, Path) else "PostgreSQL"
    print(
        f"\n{kind}: 3 writers, {2 * WRITER_ACTIONS} actions and "
        f"{3 * WRITER_POLLS * WRITER_QUEUES:,} samples in {took:.1f} s"
    )
