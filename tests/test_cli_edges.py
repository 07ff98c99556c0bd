"""The CLI's rough edges, each as a script meets it: only the flags a verb uses, one sentence per
failure (a missing vhost named as such), every failed or refused change in the audit log, the
tenants table with what --json has, and sizes in units a person reads."""

import json
import re

import pytest

from dashboard.actions.audit import AuditLog
from dashboard.cli.output import size
from dashboard.reads.peek import PEEK_NOTICE
from tests.support.helpers import (
    declare,
    fill,
    ready_count,
    run_cli,
    tenant_with_messages,
    wait_until,
)


def assert_one_sentence(done, sentence: str) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"warren: {sentence}\n")


@pytest.mark.parametrize(
    "verb", [["nodes", "--vhost", "eu"], ["nodes", "--exchange", "x"], ["audit", "--vhost", "eu"]]
)
def test_nodes_and_audit_refuse_the_flags_that_mean_nothing_to_them(broker, tmp_path, verb):
    done = run_cli(broker, tmp_path / "audit.sqlite", *verb)
    assert done.returncode == 2
    assert f"unrecognized arguments: {' '.join(verb[1:])}" in done.stderr


def test_nodes_and_audit_keep_json_and_audit_limit_says_what_it_does(broker, tmp_path):
    nodes = run_cli(broker, tmp_path / "audit.sqlite", "nodes", "--json")
    audit = run_cli(broker, tmp_path / "audit.sqlite", "audit", "--json")
    help_text = run_cli(broker, None, "audit", "--help").stdout
    assert (nodes.returncode, audit.returncode) == (0, 0)
    assert [node["running"] for node in json.loads(nodes.stdout)["nodes"]] == [True]
    assert json.loads(audit.stdout) == []
    assert "--limit LIMIT  how many actions, newest first (default 50)" in help_text


def test_nodes_prints_bytes_in_binary_units_and_json_keeps_the_bytes(broker):
    # A node started a moment ago has not reported its memory yet.
    [node] = wait_until(
        lambda: [
            node
            for node in json.loads(run_cli(broker, None, "nodes", "--json").stdout)["nodes"]
            if node["mem_limit"] is not None
        ],
        what="the node's memory figures",
    )
    header, row = (
        re.split(r"\s{2,}", line.strip())
        for line in run_cli(broker, None, "nodes").stdout.splitlines()[:2]
    )
    cells = dict(zip(header, row, strict=False))
    memory, watermark = cells["MEMORY"], cells["WATERMARK"]
    assert isinstance(node["mem_limit"], int) and isinstance(node["mem_used"], int)
    assert watermark == size(node["mem_limit"])
    assert re.fullmatch(r"\d+\.\d (KiB|MiB|GiB)", memory), memory
    assert size(157_442_048) == "150.1 MiB" and size(10_110_389_452) == "9.4 GiB"
    assert (size(1), size(1023), size(1024)) == ("1 byte", "1,023 bytes", "1.0 KiB")


def test_a_failed_peek_is_one_sentence_and_a_peek_says_its_notice_once(broker, channel, unique):
    missing, queue = unique("missing"), unique("peeked")
    declare(channel, queue)
    fill(channel, queue, 1)
    failed = run_cli(broker, None, "peek", "--queue", missing)
    peeked = run_cli(broker, None, "peek", "--queue", queue)
    assert_one_sentence(
        failed, f"Not found on {broker.management_url}: queue {missing!r} in vhost '/' (404)."
    )
    assert (peeked.returncode, peeked.stderr) == (0, f"warren: {PEEK_NOTICE}\n")
    assert peeked.stdout.startswith("#1  exchange=(default)")


VHOST_VERBS = [
    ["tenants"],
    ["consumers"],
    ["peek", "--queue", "q"],
    ["purge", "--queue", "q", "--yes"],
    ["requeue", "--from", "q", "--yes"],
    ["republish", "--queue", "q", "--priority", "3", "--yes"],
    ["requeue", "--connection", "pod", "--yes"],
    ["unbind", "--tenant", "acme", "--yes"],
    ["unrouted"],
    ["browse", "--queue", "q"],
    ["export", "--queue", "q", "--file", "-"],
    ["discard", "--queue", "q", "--tenant", "acme", "--yes"],
    ["bind", "--tenant", "acme", "--yes"],
    ["capture", "--yes"],
    ["move-captured", "--tenant", "acme", "--yes"],
]


@pytest.mark.parametrize("verb", VHOST_VERBS, ids=lambda verb: "-".join(verb[:2]))
def test_a_missing_vhost_is_named_by_every_verb_that_takes_one(broker, unique, tmp_path, verb):
    vhost = unique("nope")
    audit = tmp_path / "audit.sqlite"
    # Names no test declares in any vhost: only the vhost can be blamed.
    names = [unique(word) if word in ("q", "pod", "acme") else word for word in verb]
    done = run_cli(broker, audit, *names, "--vhost", vhost)
    sentence = (
        f"Virtual host {vhost!r} does not exist on the broker at {broker.management_url}: "
        "check WARREN_VHOST (or --vhost)."
    )
    assert_one_sentence(done, sentence)
    changes = [(r.outcome, r.error) for r in AuditLog(audit).records()]
    assert changes == ([("failed", sentence)] if "--yes" in verb else [])


def change_verbs(queue: str) -> list[tuple[str, list[str]]]:
    """Each change that plans on a queue, as the audit log names it and as the CLI is called."""
    return [
        ("purge", ["purge", "--queue", queue]),
        ("requeue", ["requeue", "--from", queue]),
        ("republish", ["republish", "--queue", queue, "--priority", "3"]),
    ]


@pytest.mark.parametrize("how", [["--yes"], [], ["--dry-run"]], ids=["yes", "asked", "dry-run"])
def test_a_change_on_a_missing_queue_is_audited_as_failed(broker, unique, tmp_path, how):
    missing = unique("missing")
    audit = tmp_path / "audit.sqlite"
    sentence = f"Queue {missing!r} cannot be read: NOT_FOUND - no queue {missing!r} in vhost '/'."
    for _action, verb in change_verbs(missing):
        assert_one_sentence(run_cli(broker, audit, *verb, *how), sentence)
    records = AuditLog(audit).records()
    assert [(r.action, r.target, r.outcome, r.error, r.dry_run) for r in records] == [
        (action, missing, "failed", sentence, how == ["--dry-run"])
        for action, _verb in reversed(change_verbs(missing))
    ]
    assert all(r.actor.startswith("guest (cli, ") and r.parameters["vhost"] == "/" for r in records)


def test_a_pod_that_is_not_there_is_audited_as_failed(broker, unique, tmp_path):
    pod = unique("pod")
    audit = tmp_path / "audit.sqlite"
    done = run_cli(broker, audit, "requeue", "--connection", pod, "--yes")
    sentence = f"No consumer connection is named {pod!r}: nothing was changed."
    assert_one_sentence(done, sentence)
    [record] = AuditLog(audit).records()
    assert (record.action, record.target, record.outcome, record.error) == (
        "requeue-connection", pod, "failed", sentence,
    )  # fmt: skip


def test_a_user_who_may_not_act_is_refused_before_a_plan_fails(
    broker, broker_user, unique, tmp_path
):
    user, password = broker_user("monitoring")
    missing = unique("missing")
    audit = tmp_path / "audit.sqlite"
    env = {"WARREN_USERNAME": user, "WARREN_PASSWORD": password}
    refusal = (
        f"User {user!r} (tags: monitoring) may only look: only users tagged administrator or "
        "policymaker may change anything through Warren: nothing was changed."
    )
    for _action, verb in change_verbs(missing):
        assert_one_sentence(run_cli(broker, audit, *verb, "--yes", **env), refusal)
    assert [(r.action, r.outcome, r.error) for r in AuditLog(audit).records()] == [
        (action, "refused", refusal) for action, _verb in reversed(change_verbs(missing))
    ]


def test_the_tenants_table_has_flags_dead_letters_and_the_reasons(
    broker, channel, unique, settings_for
):
    exchange = unique("tenants")
    flagged = tenant_with_messages(channel, exchange, "acme", unique("acme"), 7)
    channel.basic_publish("", f"{flagged}.dlq", b"dead", mandatory=True)
    queue = unique("plain")
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="globex")
    assert ready_count(settings_for(), f"{flagged}.dlq") == 1

    def both():
        listed = run_cli(broker, None, "tenants", "--json", "--exchange", exchange)
        table = run_cli(broker, None, "tenants", "--exchange", exchange)
        records = json.loads(listed.stdout)
        shown = [(r["tenant"], r["ready"], r["dead_letters"]) for r in records]
        return (records, table.stdout) if shown == [("acme", 7, 1), ("globex", 0, None)] else None

    records, table = wait_until(both, what="both tenants with their dead letters")
    lines = table.splitlines()
    assert lines[0].split()[7:] == ["FLAGS", "DEAD", "LETTERS", "WAITING", "DRAIN"]
    acme, globex = (line.split() for line in lines[1:3])
    kinds = ", ".join(flag["kind"] for flag in records[0]["flags"])
    assert kinds and acme[7 : 8 + len(kinds.split())] == [*kinds.split(), "1"]
    assert acme[-3:] == ["never:", "no", "consumer"]
    assert records[1]["flags"] == []
    assert globex == ["globex", queue, "0", "0", "0", "0", "classic"]
    reasons = [f"{r['tenant']}: {flag['reason']}" for r in records for flag in r["flags"]]
    assert lines[3 : 3 + len(reasons)] == reasons
    assert lines[-1].startswith("2 tenants in 2 queues: 7 ready")
