"""The CLI's verbs that only look: tenants, consumers, nodes, audit.

The reads that `warren tenants` does not run are imported by the verbs that do: its start-up
is part of the one-shot's time."""

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from dashboard.actions.audit import audit_log, count, readable
from dashboard.broker.management import naming_a_missing_vhost
from dashboard.broker.session import Session
from dashboard.cli.output import cell, format_table, print_json, size
from dashboard.reads.durations import duration_text
from dashboard.reads.history import open_history
from dashboard.reads.kept_topology import kept_topologies
from dashboard.reads.models import TenantRow, Unrouted, rows_json
from dashboard.reads.overview import fetch_overview
from dashboard.reads.stuck import flag_overview
from dashboard.reads.unrouted import fetch_unrouted, unrouted_sentence
from dashboard.reads.waiting import longest_waiting_first
from dashboard.settings import Settings, load_settings

TENANT_COLUMNS = (
    ("tenant", "TENANT"),
    ("queue", "QUEUE"),
    ("ready", "READY"),
    ("unacked", "UNACKED"),
    ("total", "TOTAL"),
    ("consumers", "CONSUMERS"),
    ("queue_type", "TYPE"),
    ("flags", "FLAGS"),
    ("dead_letters", "DEAD LETTERS"),
    ("wait", "WAITING"),
    ("drain", "DRAIN"),
)
CONSUMER_COLUMNS = (
    ("connection", "CONNECTION"),
    ("queue", "QUEUE"),
    ("consumer_tag", "TAG"),
    ("prefetch", "PREFETCH"),
    ("unacked", "UNACKED"),
    ("load", "LOAD"),
    ("ack_rate", "ACK/S"),
    ("flags", "FLAGS"),
    ("no_ack_for", "NO ACK FOR"),
)
POD_COLUMNS = (
    ("connection", "POD"),
    ("consumers", "CONSUMERS"),
    ("unacked", "UNACKED"),
    ("prefetch", "PREFETCH"),
    ("queues", "QUEUES"),
    ("flags", "FLAGS"),
)
NODE_COLUMNS = (
    ("name", "NODE"),
    ("running", "RUNNING"),
    ("mem_alarm", "MEMORY ALARM"),
    ("disk_free_alarm", "DISK ALARM"),
    ("mem_used", "MEMORY"),
    ("mem_limit", "WATERMARK"),
    ("fd_used", "FDS"),
    ("partitions", "CANNOT REACH"),
)
AUDIT_COLUMNS = (
    ("started", "STARTED (UTC)"),
    ("actor", "ACTOR"),
    ("action", "ACTION"),
    ("target", "TARGET"),
    ("dry_run", "DRY RUN"),
    ("outcome", "OUTCOME"),
    ("counts", "COUNTS"),
    ("error", "ERROR"),
)


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings, with --vhost and --exchange (for the verbs that take them) winning over
    WARREN_VHOST and the like."""
    given = vars(args)
    pairs = {"vhost": given.get("vhost"), "tenant_exchange": given.get("exchange")}
    return load_settings(**{key: value for key, value in pairs.items() if value is not None})


@contextmanager
def open_session(args: argparse.Namespace) -> Iterator[Session]:
    """The run's session in its vhost: a failure there that a missing vhost explains names it."""
    session = Session(settings_of(args))
    audit_log(session.settings).mark_interrupted()
    with session, naming_a_missing_vhost(session.client, session.vhost):
        yield session


def tenants(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        overview = fetch_overview(session, args.statistics, kept_topologies(session.settings))
        # The history the console and the watcher keep, and the broker's samples.
        history = open_history(session.settings)
        flag_overview(overview, history, session.settings, session=session)
        unrouted = None if args.json else _unrouted(session)
    rows = longest_waiting_first(overview.rows) if args.sort == "wait" else overview.rows
    if args.json:
        print(rows_json(rows))
        return 0
    records = [row.record("json") for row in rows]
    for record, row in zip(records, rows, strict=True):
        record["flags"] = _kinds(record["flags"])
        record["wait"], record["drain"] = _wait_cells(row)
    print(format_table(records, TENANT_COLUMNS))
    for row in rows:
        for flag in row.flags:
            print(f"{cell(row.tenant)}: {cell(flag.reason)}")
    totals = overview.totals
    print(
        f"\n{count(totals.tenants, 'tenant')} in {count(totals.queues, 'queue')}: "
        f"{totals.ready:,} ready, {totals.unacked:,} unacked, "
        f"{count(totals.consumers, 'consumer')}"
    )
    if unrouted and (unrouted.dropped or unrouted.captured):
        print(unrouted_sentence(unrouted))
    if overview.statistics_at is None:
        source = "metrics endpoint" if overview.counts_from == "metrics" else "management API"
        print(
            f"Counts only, from the {source}: rates and the no-acks and redelivery-loop flags "
            "need --statistics (the default up to WARREN_STATISTICS_UP_TO queues in the vhost)."
        )
    return 0


def _unrouted(session: Session) -> Unrouted | None:
    # The poll's module brings the consumers' and the nodes' reads along.
    from dashboard.reads.poll import unrouted_or_none

    return unrouted_or_none(session)


def _wait_cells(row: TenantRow) -> tuple[str | None, str | None]:
    if row.wait is None:
        return None, None
    waited = duration_text(row.wait.seconds)
    return (f">= {waited}" if row.wait.at_least else waited), row.wait.drain


def unrouted(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        found = fetch_unrouted(session)
    if args.json:
        print_json(found.model_dump(mode="json"))
        return 0
    print(unrouted_sentence(found))
    if not found.capturing:
        print("`warren capture` keeps what it cannot route from now on.")
    if found.ids:
        records = [captured.model_dump() for captured in found.ids]
        print(format_table(records, (("routing_key", "TENANT ID"), ("messages", "CAPTURED"))))
    return 0


def consumers(args: argparse.Namespace) -> int:
    from dashboard.reads.consumers import fetch_consumers, own_only_sentence, pods_of

    with open_session(args) as session:
        found = fetch_consumers(session)
    if found.own_only:
        print(f"warren: {own_only_sentence(session.username)}", file=sys.stderr)
    if args.by_pod:
        return _pods(args, pods_of(found.loads))
    records = [load.model_dump(mode="json") for load in found.loads]
    if args.json:
        print_json(records)
        return 0
    for record in records:
        record["flags"] = _kinds(record["flags"])
        record["load"] = "" if record["load"] is None else f"{record['load']:.0%}"
    print(format_table(records, CONSUMER_COLUMNS))
    for load in found.loads:
        for flag in load.flags:
            print(f"{cell(load.connection)} {cell(load.consumer_tag)}: {cell(flag.reason)}")
    return 0


def _pods(args: argparse.Namespace, pods) -> int:
    """Per pod (connection): its consumers, what it holds against its prefetch, its flags."""
    records = [pod.model_dump(mode="json") for pod in pods]
    if args.json:
        print_json(records)
        return 0
    for record in records:
        record["queues"] = ", ".join(record["queues"])
        record["flags"] = _kinds(record["flags"])
    print(format_table(records, POD_COLUMNS))
    for pod in pods:
        for flag in pod.flags:
            print(f"{pod.connection}: {flag.reason}")
    return 0


def _kinds(flags: list[dict]) -> str:
    return ", ".join(flag["kind"] for flag in flags)


def nodes(args: argparse.Namespace) -> int:
    from dashboard.reads.nodes import fetch_cluster

    with Session(settings_of(args)) as session:
        cluster = fetch_cluster(session)
    if args.json:
        print_json(cluster.model_dump(mode="json"))
        return 0
    records = [
        node.model_dump(mode="json")
        | {
            "partitions": ", ".join(node.partitions),
            "mem_used": size(node.mem_used),
            "mem_limit": size(node.mem_limit),
        }
        for node in cluster.nodes
    ]
    print(format_table(records, NODE_COLUMNS))
    print(
        f"\nRabbitMQ {cluster.version}, read from {cluster.read_from_node} at {cluster.read_from}."
    )
    for sentence in cluster.alarms:
        print(sentence)
    return 0


def audit(args: argparse.Namespace) -> int:
    log = audit_log(settings_of(args))
    records = [record.model_dump() for record in log.records(args.limit)]
    if args.json:
        print_json(records)
        return 0
    for record in records:
        record["started"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record["started_at"]))
        record["counts"] = readable(record["counts"])
    print(format_table(records, AUDIT_COLUMNS))
    return 0
