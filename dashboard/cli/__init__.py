"""`warren` / `python -m dashboard`: the console's second face, for scripts and runbooks."""

# Its verbs, flags, output and exit codes are an interface scripts depend on: extend, don't break.

import argparse
import atexit
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from dashboard.cli.selecting import add_selection
from dashboard.errors import WarrenError
from dashboard.tuning import tune_garbage_collector


class _Verbs:
    """The verbs of one CLI module, imported only when one of them runs: a verb pays for its
    own imports only (a third of `warren tenants`'s start-up is the other verbs')."""

    def __init__(self, module: str):
        self.module = module

    def __getattr__(self, name: str) -> Callable[[argparse.Namespace], int]:
        def verb(args: argparse.Namespace) -> int:
            return getattr(importlib.import_module(self.module), name)(args)

        return verb


changes, letters, reads, watch = (
    _Verbs(f"dashboard.cli.{name}") for name in ("changes", "letters", "reads", "watch")
)


def main(argv: Sequence[str] | None = None) -> int:
    tune_garbage_collector()
    # The collector's last passes as the process ends walk every object left, only to free
    # memory the system takes back anyway: a tenth of a second after `warren tenants` at 10,000.
    atexit.register(gc.freeze)
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
    _looks(sub, read)
    _moves(change)
    _letters(sub, read, change)
    _changes(change)
    audit_cmd = _command(sub, "audit", reads.audit, "the latest admin actions, newest first")
    audit_cmd.add_argument(
        "--limit", type=int, default=50, help="how many actions, newest first (default 50)"
    )
    _watch(sub)
    demo = sub.add_parser("demo", help="a disposable local broker with tenants, and the console")
    demo.add_argument("--port", type=int, default=8501, help="console port (default 8501)")
    demo.add_argument("--tenants", type=int, default=12, help="how many demo tenants")
    demo.set_defaults(handler=_demo)
    return parser


def _looks(sub, read) -> None:
    tenants = read("tenants", reads.tenants, "ready and unacked counts per tenant queue")
    tenants.add_argument(
        "--sort",
        choices=("ready", "wait"),
        default="ready",
        help="most ready first (default), or longest waiting work first",
    )
    tenants.add_argument(
        "--statistics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also read rates, ack and redelivery counters and the oldest message's age, from "
        "the broker's full queue list (slow at scale: seconds at 10,000 queues). Default: "
        "only where the vhost has at most WARREN_STATISTICS_UP_TO (1,000) queues; without "
        "them, counts come from the metrics endpoint (else a list of counts only), rates are "
        "null and the no-acks and redelivery-loop flags are not judged. At scale the "
        "topology (bindings, queue settings) is a listing that the console, the watcher or "
        "an earlier run kept, up to WARREN_TOPOLOGY_SECONDS (60) old, while the counts name "
        "the same queues; the counts are always read now",
    )
    consumers = read("consumers", reads.consumers, "per-consumer load, grouped by connection (pod)")
    consumers.add_argument(
        "--by-pod", action="store_true", help="one row per pod: its consumers, unacked, prefetch"
    )
    read("unrouted", reads.unrouted, "messages the tenant exchange dropped or captured")
    _command(sub, "nodes", reads.nodes, "the cluster's nodes: running, alarms, memory, disk")
    peek = read(
        "peek", changes.peek_messages, "show the first ready messages of a queue (requeued)"
    )
    peek.add_argument("--queue", required=True, help="queue name, exactly")
    peek.add_argument("--count", type=int, default=5, help="how many messages (default 5)")
    peek.add_argument(
        "--yes", action="store_true", help="confirm peeking a quorum queue (a change)"
    )


def _watch(sub) -> None:
    command = sub.add_parser(
        "watch", help="poll on, serve Prometheus metrics, post alerts (until stopped)"
    )
    command.set_defaults(handler=watch.watch)
    command.add_argument(
        "--vhost",
        action="append",
        help="virtual host (repeat to watch several; default: WARREN_VHOST)",
    )
    command.add_argument("--exchange", help="tenant exchange (default: WARREN_TENANT_EXCHANGE)")
    command.add_argument(
        "--address", help="address to serve /metrics on (default: WARREN_WATCH_ADDRESS, 127.0.0.1)"
    )
    command.add_argument(
        "--port", type=int, help="port to serve /metrics on (default: WARREN_WATCH_PORT, 9438)"
    )
    command.add_argument(
        "--webhook", help="post alerts here as Alertmanager would (default: WARREN_WEBHOOK_URL)"
    )


def _moves(change) -> None:
    requeue_cmd = change(
        "requeue", changes.requeue_messages, "move dead letters back, at least once"
    )
    origin = requeue_cmd.add_mutually_exclusive_group(required=True)
    origin.add_argument("--from", dest="source", help="dead-letter queue to take from")
    origin.add_argument("--connection", help="pod whose unacked messages go back to ready")
    requeue_cmd.add_argument("--to", help="queue to put into (default: each x-death queue)")
    requeue_cmd.add_argument("--limit", type=int, help="at most this many (default: all ready)")
    add_selection(requeue_cmd)
    requeue_cmd.add_argument("--priority", type=int, help="give the copies this priority")
    requeue_cmd.add_argument(
        "--include-redriven",
        action="store_true",
        help="also messages redriven WARREN_MAX_REDRIVES times or more (held back otherwise)",
    )
    _throttled(requeue_cmd)
    _accepts_loss(requeue_cmd)
    republish_cmd = change(
        "republish", changes.republish_messages, "copy messages with a new priority"
    )
    republish_cmd.add_argument("--queue", required=True, help="queue to take from")
    republish_cmd.add_argument("--priority", type=int, required=True, help="the new priority")
    republish_cmd.add_argument("--to", help="queue to put into (default: the same queue)")
    republish_cmd.add_argument("--routing-key", help="publish to the tenant exchange with this")
    republish_cmd.add_argument("--limit", type=int, help="at most this many (default: all ready)")
    _throttled(republish_cmd)
    _accepts_loss(republish_cmd)
    publish_cmd = change(
        "publish", letters.publish_file, "publish an exported file into a queue or the exchange"
    )
    publish_cmd.add_argument("--file", required=True, help="JSON lines, as `warren export` writes")
    target = publish_cmd.add_mutually_exclusive_group()
    target.add_argument("--queue", help="queue to put into (default: the tenant exchange)")
    target.add_argument(
        "--routing-key", help="to the tenant exchange with this (default: each message's own)"
    )
    publish_cmd.add_argument(
        "--skip", type=int, default=0, help="skip this many messages (resume a stopped run)"
    )
    _throttled(publish_cmd)
    _accepts_loss(publish_cmd)


def _throttled(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--rate", type=float, help="at most this many messages a second (default: no limit)"
    )


def _letters(sub, read, change) -> None:
    browse = read(
        "browse", letters.browse_queue, "look through a whole queue: counts by death, a page"
    )
    browse.add_argument("--queue", required=True, help="queue name, exactly")
    add_selection(browse)
    browse.add_argument("--offset", type=int, default=0, help="page from this match (default 0)")
    browse.add_argument("--size", type=int, default=20, help="messages on the page (default 20)")
    browse.add_argument("--by-header", help="also count the matches by this header's value")
    browse.add_argument("--yes", action="store_true", help="confirm on a quorum queue (a change)")
    export = read("export", letters.export_queue, "write a queue's messages out as JSON lines")
    export.add_argument("--queue", required=True, help="queue name, exactly")
    export.add_argument("--file", required=True, help="where to write (- for standard output)")
    add_selection(export)
    export.add_argument("--yes", action="store_true", help="confirm on a quorum queue (a change)")
    discard = change("discard", letters.discard_messages, "delete the selected messages of a queue")
    discard.add_argument("--queue", required=True, help="queue name, exactly")
    add_selection(discard)


def _accepts_loss(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--force",
        action="store_true",
        help="even if the queue written into would drop messages by its own limits",
    )


def _changes(change) -> None:
    purge_cmd = change("purge", changes.purge_queue, "delete the ready messages of a queue")
    purge_cmd.add_argument("--queue", required=True, help="queue name, exactly")
    bind_cmd = change("bind", changes.bind_tenants, "onboard tenants: queue, dead letters, binding")
    bind_cmd.add_argument("--tenant", action="append", default=[], help="tenant id (repeat)")
    bind_cmd.add_argument("--file", help="tenant ids, one per line or first CSV column")
    bind_cmd.add_argument("--queue-type", choices=("classic", "quorum"), default="classic")
    bind_cmd.add_argument(
        "--max-priority", type=int, default=10, help="classic queues (default 10; 0: none)"
    )
    bind_cmd.add_argument("--no-dead-letters", action="store_true", help="no dead-letter queue")
    unbind_cmd = change(
        "unbind", changes.unbind_tenant, "offboard a tenant: unbind, optionally delete"
    )
    unbind_cmd.add_argument("--tenant", required=True, help="tenant id (the routing key)")
    unbind_cmd.add_argument("--delete-queue", action="store_true", help="delete its queue too")
    unbind_cmd.add_argument("--force", action="store_true", help="even if it holds messages")
    change("capture", changes.capture_unrouted, "keep what the tenant exchange cannot route")
    captured_cmd = change(
        "move-captured", changes.move_captured, "move an onboarded tenant's captured messages"
    )
    captured_cmd.add_argument("--tenant", required=True, help="tenant id (the routing key)")
    _accepts_loss(captured_cmd)


def _command(sub, name: str, handler, summary: str) -> argparse.ArgumentParser:
    """A command with --json only: for the verbs that look at no vhost (nodes, audit)."""
    command = sub.add_parser(name, help=summary)
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(handler=handler)
    return command


def _reader(sub):
    """A command that reads the tenants of a vhost: --json, --vhost and --exchange."""

    def add(name: str, handler, summary: str) -> argparse.ArgumentParser:
        command = _command(sub, name, handler, summary)
        command.add_argument("--vhost", help="virtual host (default: WARREN_VHOST)")
        command.add_argument("--exchange", help="tenant exchange (default: WARREN_TENANT_EXCHANGE)")
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


def _demo(args: argparse.Namespace) -> int:
    from dashboard.local.demo import run_demo

    return run_demo(port=args.port, tenants=args.tenants)
