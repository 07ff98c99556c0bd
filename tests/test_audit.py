"""The audit log read as a person reads it: counts and parameters as words on the Audit page and
in `warren audit`, the CSV export still JSON for machines."""

import csv
import io
import json
import sqlite3

import pytest

from dashboard.actions.access import audit_view
from dashboard.actions.audit import AuditLog, readable, records_csv
from tests.support.helpers import run_cli

THIN = "\u202f"


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ({"purged": 259}, "purged 259"),
        ({"created": 0}, "created 0"),
        ({}, ""),
        ({"vhost": "/", "priority": 9}, "vhost /, priority 9"),
        ({"moved": 1200, "failed": 0}, f"moved 1{THIN}200, failed 0"),
        (
            {"to": None, "limit": 5, "filter": {"tenant": "acme", "reason": None}},
            "limit 5, filter (tenant acme)",
        ),
        (
            {"routing_key": "acme", "dead_letters": True, "tenants": ["a", "b"], "queues": []},
            "routing key acme, dead letters yes, tenants (a, b), queues (none)",
        ),
        # Per queue: `ready:<queue>`, the queue's name as it is.
        ({"moved": 3, "ready:tenant_globex.q": 15}, "moved 3, ready in tenant_globex.q 15"),
    ],
)
def test_counts_and_parameters_read_as_words(values, text):
    assert readable(values) == text


def recorded(path, *actions: tuple[str, dict, dict]) -> list:
    """Audit rows written as an action writes them: (action, parameters, counts) each."""
    log = AuditLog(path)
    for action, parameters, counts in actions:
        with log.action("guest (test)", action, "q", parameters, False) as entry:
            entry.counts = counts
    return log.records()


ACTIONS = (
    ("purge", {"vhost": "/"}, {"purged": 259}),
    ("bind", {"queue_type": "classic", "max_priority": 10}, {"created": 0}),
    ("unbind", {}, {}),
    ("requeue", {"to": None, "limit": 1200, "vhost": "/"}, {"moved": 1200, "failed": 0}),
)


def test_the_audit_page_shows_counts_and_parameters_as_words(console, tmp_path):
    recorded(tmp_path / "audit.sqlite", *ACTIONS)
    app = console(page="pages/audit.py", WARREN_AUDIT_DB=str(tmp_path / "audit.sqlite"))
    assert not app.exception
    shown = app.dataframe[0].value[["action", "counts", "parameters"]].values.tolist()
    assert shown == [
        ["requeue", f"moved 1{THIN}200, failed 0", f"limit 1{THIN}200, vhost /"],
        ["unbind", "", ""],
        ["bind", "created 0", "queue type classic, max priority 10"],
        ["purge", "purged 259", "vhost /"],
    ]


def test_the_csv_export_keeps_counts_and_parameters_as_json(tmp_path):
    records = recorded(tmp_path / "audit.sqlite", *ACTIONS)
    rows = list(csv.DictReader(io.StringIO(records_csv(records))))
    assert [(json.loads(r["parameters"]), json.loads(r["counts"])) for r in rows] == [
        (parameters, counts) for _action, parameters, counts in reversed(ACTIONS)
    ]


def test_warren_audit_prints_the_same_words(broker, tmp_path):
    recorded(tmp_path / "audit.sqlite", *ACTIONS)
    done = run_cli(broker, tmp_path / "audit.sqlite", "audit", "--limit", "2")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    counts_at = header.index("COUNTS")
    assert [row[counts_at:].split("  ")[0] for row in rows] == [f"moved 1{THIN}200, failed 0", ""]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_no_cell_of_the_csv_export_is_a_formula(tmp_path, start):
    hostile = f'{start}HYPERLINK("https://evil.example","click")'
    log = AuditLog(tmp_path / "audit.sqlite")
    with log.action(hostile, "purge", hostile, {}, False):
        pass
    row = next(csv.DictReader(io.StringIO(records_csv(log.records()))))
    assert (row["actor"], row["target"]) == (f"'{hostile}", f"'{hostile}")


OLD_SCHEMA = """
CREATE TABLE actions (
    id INTEGER PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
    parameters TEXT NOT NULL, dry_run INTEGER NOT NULL, started_at REAL NOT NULL, ended_at REAL,
    outcome TEXT, counts TEXT, error TEXT
);
"""


def audit_across_vhosts(path, hidden_vhost: str) -> None:
    """An audit log begun before records kept their vhost (one naming it in its parameters, one
    not), then one record in vhost `/` and one in `hidden_vhost`."""
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for target, parameters in (("old-named", {"vhost": "/"}), ("old-unnamed", {})):
            db.execute(
                "INSERT INTO actions (actor, action, target, parameters, dry_run, started_at)"
                " VALUES ('guest (test)', 'purge', ?, ?, 0, 1)",
                (target, json.dumps(parameters)),
            )
    log = AuditLog(path)
    for target, vhost in (("in-root", "/"), ("in-hidden", hidden_vhost)):
        with log.action("guest (test)", "purge", target, {}, False, vhost):
            pass


def test_each_user_sees_the_records_of_the_vhosts_it_may_read(
    session_for, broker_user, unique, tmp_path, console
):
    audit = tmp_path / "audit.sqlite"
    audit_across_vhosts(audit, unique("hidden"))
    user, password = broker_user("management")

    mine = audit_view(session_for(username=user, password=password, audit_db=audit), 50)
    admins = audit_view(session_for(audit_db=audit), 50)

    assert (mine.vhosts, [r.target for r in mine.records]) == (["/"], ["in-root", "old-named"])
    assert admins.vhosts is None
    assert [r.target for r in admins.records] == [
        "in-hidden",
        "in-root",
        "old-unnamed",
        "old-named",
    ]
    app = console(page="pages/audit.py", WARREN_AUTH="login", WARREN_AUDIT_DB=str(audit))
    app.text_input(key="login-user").set_value(user)
    app.text_input(key="login-password").set_value(password)
    app.button(key="FormSubmitter:login-Log in").click().run()
    [table] = app.dataframe
    assert list(table.value["target"]) == ["in-root", "old-named"]
