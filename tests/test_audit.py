"""The audit log read as a person reads it: counts and parameters as words on the Audit page and
in `warren audit`, the CSV export still JSON for machines."""

import csv
import io
import json

import pytest

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
