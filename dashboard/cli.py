"""`warren` / `python -m dashboard`: the console's second face, for scripts and runbooks."""

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence

from dashboard.consumers import fetch_consumers, own_only_sentence
from dashboard.errors import WarrenError
from dashboard.management import ManagementClient
from dashboard.messages import PEEK_NOTICE, Death, PeekedMessage, peek
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
    tenants = sub.add_parser("tenants", help="ready and unacked counts per tenant queue")
    _add_common(tenants)
    tenants.set_defaults(handler=_tenants)
    consumers = sub.add_parser("consumers", help="per-consumer load, grouped by connection (pod)")
    _add_common(consumers)
    consumers.set_defaults(handler=_consumers)
    peek = sub.add_parser("peek", help="show the first ready messages of a queue (requeued)")
    _add_common(peek)
    peek.add_argument("--queue", required=True, help="queue name, exactly")
    peek.add_argument("--count", type=int, default=5, help="how many messages (default 5)")
    peek.add_argument("--yes", action="store_true", help="confirm peeking a quorum queue")
    peek.set_defaults(handler=_peek)
    demo = sub.add_parser("demo", help="a disposable local broker with tenants, and the console")
    demo.add_argument("--port", type=int, default=8501, help="console port (default 8501)")
    demo.add_argument("--tenants", type=int, default=12, help="how many demo tenants")
    demo.set_defaults(handler=_demo)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--vhost", help="virtual host (default: WARREN_VHOST)")
    parser.add_argument("--exchange", help="tenant exchange (default: WARREN_TENANT_EXCHANGE)")


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
