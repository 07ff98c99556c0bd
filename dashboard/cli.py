"""`warren` / `python -m dashboard`: the console's second face, for scripts and runbooks."""

import argparse
import contextlib
import getpass
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dashboard.amqp import ready_count
from dashboard.audit import AuditLog
from dashboard.consumers import fetch_consumers, own_only_sentence
from dashboard.errors import WarrenError
from dashboard.management import ManagementClient
from dashboard.messages import PEEK_NOTICE, Death, PeekedMessage, peek
from dashboard.mover import MoveResult
from dashboard.nodes import fetch_cluster
from dashboard.onboarding import (
    TenantSpec,
    bind_audited,
    bind_sentence,
    parse_tenant_list,
    unbind_audited,
    unbind_sentence,
)
from dashboard.purge import plan_purge, purge_audited
from dashboard.republish import plan_republish, republish_audited
from dashboard.requeue import (
    RequeueFilter,
    held_by,
    plan_requeue,
    quorum_queues,
    release_audited,
    requeue_audited,
)
from dashboard.settings import Settings, load_settings
from dashboard.stuck import flag_overview
from dashboard.tenants import fetch_overview

TENANT_COLUMNS = (
    ("tenant", "TENANT"),
    ("queue", "QUEUE"),
    ("ready", "READY"),
    ("unacked", "UNACKED"),
    ("total", "TOTAL"),
    ("consumers", "CONSUMERS"),
    ("queue_type", "TYPE"),
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

BIND_COLUMNS = (
    ("tenant", "TENANT"),
    ("queue", "QUEUE"),
    ("outcome", "OUTCOME"),
    ("created", "CREATED"),
    ("error", "ERROR"),
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except WarrenError as exc:
        print(f"warren: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("warren: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`warren tenants | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warren", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    read = _reader(sub)
    change = _changer(sub)
    read("tenants", _tenants, "ready and unacked counts per tenant queue")
    read("consumers", _consumers, "per-consumer load, grouped by connection (pod)")
    read("nodes", _nodes, "the cluster's nodes: running, alarms, memory, disk")
    peek = read("peek", _peek, "show the first ready messages of a queue (requeued)")
    peek.add_argument("--queue", required=True, help="queue name, exactly")
    peek.add_argument("--count", type=int, default=5, help="how many messages (default 5)")
    peek.add_argument("--yes", action="store_true", help="confirm peeking a quorum queue")
    requeue_cmd = change("requeue", _requeue, "move dead letters back, at least once")
    origin = requeue_cmd.add_mutually_exclusive_group(required=True)
    origin.add_argument("--from", dest="source", help="dead-letter queue to take from")
    origin.add_argument("--connection", help="pod whose unacked messages go back to ready")
    requeue_cmd.add_argument("--to", help="queue to put into (default: each x-death queue)")
    requeue_cmd.add_argument("--limit", type=int, help="at most this many (default: all ready)")
    requeue_cmd.add_argument("--tenant", help="only those that died with this routing key")
    requeue_cmd.add_argument("--reason", help="only this x-death reason (rejected, expired, ...)")
    requeue_cmd.add_argument("--header", help="only those whose header NAME=VALUE")
    republish_cmd = change("republish", _republish, "copy messages with a new priority")
    republish_cmd.add_argument("--queue", required=True, help="queue to take from")
    republish_cmd.add_argument("--priority", type=int, required=True, help="the new priority")
    republish_cmd.add_argument("--to", help="queue to put into (default: the same queue)")
    republish_cmd.add_argument("--routing-key", help="publish to the tenant exchange with this")
    republish_cmd.add_argument("--limit", type=int, help="at most this many (default: all ready)")
    purge_cmd = change("purge", _purge, "delete the ready messages of a queue")
    purge_cmd.add_argument("--queue", required=True, help="queue name, exactly")
    bind_cmd = change("bind", _bind, "onboard tenants: queue, dead letters, binding")
    bind_cmd.add_argument("--tenant", action="append", default=[], help="tenant id (repeat)")
    bind_cmd.add_argument("--file", help="tenant ids, one per line or first CSV column")
    bind_cmd.add_argument("--queue-type", choices=("classic", "quorum"), default="classic")
    bind_cmd.add_argument(
        "--max-priority", type=int, default=10, help="classic queues (default 10; 0: none)"
    )
    bind_cmd.add_argument("--no-dead-letters", action="store_true", help="no dead-letter queue")
    unbind_cmd = change("unbind", _unbind, "offboard a tenant: unbind, optionally delete")
    unbind_cmd.add_argument("--tenant", required=True, help="tenant id (the routing key)")
    unbind_cmd.add_argument("--delete-queue", action="store_true", help="delete its queue too")
    unbind_cmd.add_argument("--force", action="store_true", help="even if it holds messages")
    audit_cmd = read("audit", _audit, "the latest admin actions, newest first")
    audit_cmd.add_argument("--limit", type=int, default=50)
    demo = sub.add_parser("demo", help="a disposable local broker with tenants, and the console")
    demo.add_argument("--port", type=int, default=8501, help="console port (default 8501)")
    demo.add_argument("--tenants", type=int, default=12, help="how many demo tenants")
    demo.set_defaults(handler=_demo)
    return parser


def _reader(sub):
    """A command that reads: --json, --vhost and --exchange."""

    def add(name: str, handler, summary: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=summary)
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.add_argument("--vhost", help="virtual host (default: WARREN_VHOST)")
        command.add_argument("--exchange", help="tenant exchange (default: WARREN_TENANT_EXCHANGE)")
        command.set_defaults(handler=handler)
        return command

    return add


def _changer(sub):
    """A command that changes the broker: also --dry-run, and --yes to skip the question."""
    read = _reader(sub)

    def add(name: str, handler, summary: str) -> argparse.ArgumentParser:
        command = read(name, handler, summary)
        command.add_argument("--dry-run", action="store_true", help="say what it would do")
        command.add_argument("--yes", action="store_true", help="do it without asking")
        return command

    return add


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with --vhost and --exchange winning over WARREN_VHOST and the like."""
    pairs = {"vhost": args.vhost, "tenant_exchange": args.exchange}
    return load_settings(**{key: value for key, value in pairs.items() if value is not None})


def _tenants(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with ManagementClient(settings) as client:
        overview = fetch_overview(client, settings.vhost, settings.tenant_exchange)
    flag_overview(overview, None, settings)
    records = [row.model_dump(mode="json") for row in overview.rows]
    if args.json:
        print(json.dumps(records, ensure_ascii=False))
    else:
        print(format_table(records, TENANT_COLUMNS))
        totals = overview.totals
        print(
            f"\n{_count(totals.tenants, 'tenant')} in {_count(totals.queues, 'queue')}: "
            f"{totals.ready:,} ready, {totals.unacked:,} unacked, "
            f"{_count(totals.consumers, 'consumer')}"
        )
    return 0


def _consumers(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with ManagementClient(settings) as client:
        report = fetch_consumers(
            client, settings.vhost, settings.tenant_exchange, settings.stuck_after_seconds
        )
    if report.own_only:
        print(f"warren: {own_only_sentence(settings.username)}", file=sys.stderr)
    loads = report.loads
    records = [load.model_dump(mode="json") for load in loads]
    if args.json:
        print(json.dumps(records, ensure_ascii=False))
        return 0
    for record in records:
        record["flags"] = ", ".join(flag["kind"] for flag in record["flags"])
        record["load"] = "" if record["load"] is None else f"{record['load']:.0%}"
    print(format_table(records, CONSUMER_COLUMNS))
    for load in loads:
        for flag in load.flags:
            print(f"{load.connection} {load.consumer_tag}: {flag.reason}")
    return 0


def _nodes(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with ManagementClient(settings) as client:
        cluster = fetch_cluster(client)
    if args.json:
        print(json.dumps(cluster.model_dump(mode="json"), ensure_ascii=False))
        return 0
    records = [
        node.model_dump(mode="json") | {"partitions": ", ".join(node.partitions)}
        for node in cluster.nodes
    ]
    print(format_table(records, NODE_COLUMNS))
    print(
        f"\nRabbitMQ {cluster.version}, read from {cluster.read_from_node} at {cluster.read_from}."
    )
    for sentence in cluster.alarms:
        print(sentence)
    return 0


def _peek(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.json:
        print(f"warren: {PEEK_NOTICE}", file=sys.stderr)
    with ManagementClient(settings) as client:
        result = peek(client, settings.vhost, args.queue, args.count, confirmed=args.yes)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
        return 0
    if not result.messages:
        print(f"Queue {args.queue!r} has no ready message.")
    for message in result.messages:
        print(format_message(message))
    return 0


def format_message(message: PeekedMessage) -> str:
    lines = [
        f"#{message.position}  exchange={_cell(message.exchange) or '(default)'}  "
        f"routing key={_cell(message.routing_key)}  redelivered={message.redelivered}  "
        f"{message.size:,} bytes, {message.kind}",
        *(f"  {key}: {_cell(str(value))}" for key, value in message.properties.items()),
        *(f"  header {_cell(key)}: {_cell(str(value))}" for key, value in message.headers.items()),
        *(_death_line(death) for death in message.deaths),
        *("    " + _cell(line) for line in message.shown.splitlines()),
    ]
    if message.truncated:
        lines.append(f"    ... (cut; {message.size:,} bytes in all)")
    return "\n".join(lines)


def _death_line(death: Death) -> str:
    keys = _cell(", ".join(death.routing_keys))
    when = f", last {death.time.isoformat()}" if death.time else ""
    source = _cell(death.exchange) or "(default)"
    return (
        f"  died {death.count}x: {death.reason} in {_cell(death.queue)} "
        f"(from {source}, keys {keys}{when})"
    )


def _requeue(args: argparse.Namespace) -> int:
    if args.connection:
        return _requeue_connection(args)
    settings = _settings(args)
    only = _requeue_filter(args)
    plan = plan_requeue(settings, args.source, args.to, args.limit, only)
    parameters = plan.parameters(settings.vhost)
    declined = _declined(
        args, settings, Ask("requeue", args.source, parameters, plan.sentence, "moved"),
        dry_record=plan.model_dump(), dry_counts={"would_move": plan.limit, "ready": plan.ready},
    )  # fmt: skip
    if declined is not None:
        return declined
    with _stoppable() as stop:
        result = requeue_audited(settings, plan, actor(settings), _progress(args), stop)
    _end_progress(args)
    left = ready_count(settings, args.source)
    counts = {"moved": result.moved, "failed": result.failed, "skipped": result.skipped}
    if only.active:
        counts["kept"] = result.kept
    record = {"dry_run": False, **counts, "left": left, "stopped": result.stopped}
    summary = (
        f"Moved {result.moved:,}; {result.failed + result.skipped:,} sent back to "
        f"{args.source!r}; {left:,} ready there now."
        + (f" Stopped: {result.stopped}." if not result.clean else "")
    )
    _report(args, record, summary)
    return 0 if result.clean else 1


def _requeue_filter(args: argparse.Namespace) -> RequeueFilter:
    header, value = None, None
    if args.header:
        if "=" not in args.header:
            raise WarrenError(f"--header takes NAME=VALUE; {args.header!r} has no '='.")
        header, value = args.header.split("=", 1)
    return RequeueFilter(tenant=args.tenant, reason=args.reason, header=header, value=value)


def _requeue_connection(args: argparse.Namespace) -> int:
    """Unacked messages go back to ready only when their consumer's connection closes."""
    settings = _settings(args)
    with ManagementClient(settings) as client:
        report = fetch_consumers(
            client, settings.vhost, settings.tenant_exchange, settings.stuck_after_seconds
        )
        held = held_by(report, args.connection)
        held = held.model_copy(
            update={"quorum": quorum_queues(client, settings.vhost, held.queues)}
        )
    ask = Ask(
        "requeue-connection", held.connection_id, held.model_dump(), held.sentence, "changed",
        answer=held.connection,
    )  # fmt: skip
    declined = _declined(args, settings, ask, held.model_dump(), {"unacked": held.unacked})
    if declined is not None:
        return declined
    release_audited(settings, held, actor(settings))
    record = {"dry_run": False, **held.model_dump(), "unacked_returned": held.unacked}
    summary = f"Closed {held.connection!r}: {held.unacked:,} messages went back to ready."
    return _report(args, record, summary)


def _republish(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not 0 <= args.priority <= 255:
        raise WarrenError(f"--priority takes 0 to 255; {args.priority} is out of range.")
    with ManagementClient(settings) as client:
        plan = plan_republish(
            settings, client, args.queue, args.priority, args.to, args.routing_key, args.limit
        )
    parameters = plan.parameters(settings.vhost)
    declined = _declined(
        args, settings, Ask("republish", args.queue, parameters, plan.sentence, "moved"),
        dry_record=plan.model_dump() | {"warnings": plan.warnings},
        dry_counts={"would_move": plan.limit},
    )  # fmt: skip
    if declined is not None:
        return declined
    with _stoppable() as stop:
        result, holding = republish_audited(settings, plan, actor(settings), _progress(args), stop)
    _end_progress(args)
    record = {
        "dry_run": False,
        "moved": result.moved,
        "failed": result.failed,
        "holding_queue": holding,
        "warnings": plan.warnings,
    }
    summary = f"Republished {result.moved:,} with priority {args.priority}." + (
        f" Some messages are still in holding queue {holding!r}." if holding else ""
    )
    _report(args, record, summary)
    return 0 if result.clean and not holding else 1


def _purge(args: argparse.Namespace) -> int:
    settings = _settings(args)
    plan = plan_purge(settings, args.queue)
    # Destructive: on a terminal, the queue's name must be typed back.
    ask = Ask("purge", args.queue, {"vhost": settings.vhost}, plan.sentence, "purged", args.queue)
    declined = _declined(
        args, settings, ask, dry_record=plan.model_dump(), dry_counts={"would_purge": plan.ready}
    )
    if declined is not None:
        return declined
    purged = purge_audited(settings, args.queue, actor(settings))
    record = {"dry_run": False, "queue": args.queue, "purged": purged}
    return _report(args, record, f"Purged {purged:,} ready messages of {args.queue!r}.")


def _bind(args: argparse.Namespace) -> int:
    settings = _settings(args)
    tenants = [*args.tenant, *(_tenant_file(args.file) if args.file else [])]
    if not tenants:
        raise WarrenError("Name at least one tenant: --tenant ID or --file FILE.")
    if not 0 <= args.max_priority <= 255:
        raise WarrenError(f"--max-priority takes 0 to 255; {args.max_priority} is out of range.")
    specs = [
        TenantSpec(
            tenant=tenant,
            queue_type=args.queue_type,
            max_priority=args.max_priority or None,
            dead_letters=not args.no_dead_letters,
        )
        for tenant in tenants
    ]
    parameters = specs[0].model_dump(exclude={"tenant"}) | {"tenants": tenants}
    ask = Ask(
        "bind",
        ", ".join(tenants),
        parameters,
        bind_sentence(specs, settings.tenant_exchange),
        "changed",
    )
    declined = _declined(args, settings, ask, {"tenants": tenants}, {"tenants": len(tenants)})
    if declined is not None:
        return declined
    results = bind_audited(settings, specs, actor(settings))
    records = [result.model_dump() for result in results]
    if args.json:
        print(json.dumps(records, ensure_ascii=False))
    else:
        print(format_table(records, BIND_COLUMNS))
    return 1 if any(result.outcome == "failed" for result in results) else 0


def _unbind(args: argparse.Namespace) -> int:
    settings = _settings(args)
    parameters = {"delete_queue": args.delete_queue, "force": args.force}
    sentence = unbind_sentence(settings.tenant_exchange, args.tenant, args.delete_queue, args.force)
    ask = Ask("unbind", args.tenant, parameters, sentence, "changed", answer=args.tenant)
    declined = _declined(args, settings, ask, {"tenant": args.tenant, **parameters}, {})
    if declined is not None:
        return declined
    result = unbind_audited(settings, args.tenant, args.delete_queue, args.force, actor(settings))
    summary = f"Unbound {args.tenant!r} from {', '.join(result.queues)}." + (
        f" Deleted {', '.join(result.deleted)} ({result.dropped:,} messages dropped)."
        if result.deleted
        else ""
    )
    return _report(args, result.model_dump(), summary)


def _tenant_file(path: str) -> list[str]:
    """Tenant ids from a file: one per line, or the first column of a CSV; blank lines, `#`
    comments and a `tenant` header are skipped."""
    try:
        return parse_tenant_list(Path(path).read_text())
    except OSError as exc:
        raise WarrenError(f"Cannot read {path}: {exc.strerror}.") from None


class Ask(NamedTuple):
    """A change to ask about: audited as `action` on `target`; refused, nothing was `undone`."""

    action: str
    target: str
    parameters: dict
    sentence: str
    undone: str
    answer: str = "yes"


def _declined(
    args: argparse.Namespace, settings: Settings, ask: Ask, dry_record: dict, dry_counts: dict
) -> int | None:
    """The exit code when the change does not happen (a dry run, or no confirmation), each
    audited; None when it may go ahead."""
    if not args.dry_run and _confirmed(args, ask.sentence, ask.answer):
        return None
    log = AuditLog(settings.audit_db)
    with log.action(actor(settings), ask.action, ask.target, ask.parameters, args.dry_run) as entry:
        if args.dry_run:
            entry.counts = dry_counts
        else:
            entry.outcome = "refused"
    if args.dry_run:
        return _report(args, {"dry_run": True, **dry_record}, ask.sentence)
    print(f"warren: {ask.sentence} Nothing was {ask.undone}: add --yes to do it.", file=sys.stderr)
    return 1


def _report(args: argparse.Namespace, record: dict, sentence: str) -> int:
    print(json.dumps(record, ensure_ascii=False) if args.json else sentence)
    return 0


def _confirmed(args: argparse.Namespace, sentence: str, answer: str = "yes") -> bool:
    """--yes, or the `answer` typed back on a terminal; never yes without a person."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return False
    return input(f"{sentence} Type {answer} to go on: ").strip() == answer


@contextlib.contextmanager
def _stoppable():
    """During a move, a first Ctrl-C asks it to stop: it takes no more messages, settles those
    in flight and reports exact counts. A second one aborts (the broker then returns every
    original not yet acked to its queue)."""
    stop = threading.Event()

    def first(_signal, _frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            "\nwarren: stopping after the messages in flight (Ctrl-C again to abort).",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(args: argparse.Namespace):
    """A progress line on stderr, rewritten in place; none with --json."""
    return None if args.json else _show_progress


def _show_progress(result: MoveResult) -> None:
    print(f"\r  moved {result.moved:,}, sent back {result.failed:,}", end="", file=sys.stderr)


def _end_progress(args: argparse.Namespace) -> None:
    if not args.json:
        print(file=sys.stderr)


def _audit(args: argparse.Namespace) -> int:
    settings = _settings(args)
    records = [record.model_dump() for record in AuditLog(settings.audit_db).records(args.limit)]
    if args.json:
        print(json.dumps(records, ensure_ascii=False))
        return 0
    for record in records:
        record["started"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record["started_at"]))
        record["counts"] = ", ".join(f"{k} {v:,}" for k, v in record["counts"].items())
    print(format_table(records, AUDIT_COLUMNS))
    return 0


def actor(settings: Settings) -> str:
    """Who acts: the broker user, and the person at the terminal."""
    return f"{settings.username} (cli, {getpass.getuser()})"


def _demo(args: argparse.Namespace) -> int:
    from dashboard.demo import run_demo

    return run_demo(port=args.port, tenants=args.tenants)


def format_table(records: list[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table: numbers right-aligned with thousands separators, text left-aligned."""
    cells = [[_cell(record[key]) for key, _ in columns] for record in records]
    numeric = [all(isinstance(record[key], int) for record in records) for key, _ in columns]
    widths = [
        max([len(title), *(len(row[i]) for row in cells)]) for i, (_, title) in enumerate(columns)
    ]
    lines = [[title for _, title in columns], *cells]
    return "\n".join(
        "  ".join(_align(text, widths[i], numeric[i]) for i, text in enumerate(line)).rstrip()
        for line in lines
    )


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else _CONTROL.sub(_escaped, str(value))


# Broker names and payloads may hold terminal escape sequences (C0 and C1 controls) or text
# direction overrides: shown as \x1b or \u202e, never sent to the terminal as they are.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _align(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
