"""The CLI's verbs that change the broker: each says what it will do, asks (or takes --yes, or
--dry-run), and reports exact counts. Every outcome, declined ones too, is in the audit log."""

import argparse
import contextlib
import getpass
import signal
import sys
import threading
from pathlib import Path
from typing import NamedTuple

from dashboard.actions.access import planning
from dashboard.actions.audit import audit_log, count
from dashboard.actions.bind import TenantSpec, bind, bind_sentence, parse_tenant_list
from dashboard.actions.capture import (
    capture,
    moved_captured_sentence,
    plan_capture,
    plan_move_captured,
)
from dashboard.actions.mover import MoveResult
from dashboard.actions.moves import Moved, MovePlan, run_move
from dashboard.actions.peek import peek, peek_sentence
from dashboard.actions.purge import plan_purge, purge
from dashboard.actions.republish import plan_republish
from dashboard.actions.requeue import plan_requeue
from dashboard.actions.requeue_connection import plan_requeue_connection, requeue_connection
from dashboard.actions.unbind import unbind, unbind_sentence
from dashboard.broker.session import Session
from dashboard.cli.output import format_message, format_table, print_json, report
from dashboard.cli.reads import open_session
from dashboard.cli.selecting import selection_of
from dashboard.errors import WarrenError
from dashboard.reads.peek import PEEK_NOTICE, plan_peek
from dashboard.reads.unrouted import capture_names

BIND_COLUMNS = (
    ("tenant", "TENANT"),
    ("queue", "QUEUE"),
    ("outcome", "OUTCOME"),
    ("created", "CREATED"),
    ("error", "ERROR"),
)


def actor(session: Session) -> str:
    """Who acts: the broker user, and the person at the terminal."""
    return f"{session.username} (cli, {getpass.getuser()})"


def requeue_messages(args: argparse.Namespace) -> int:
    if args.connection:
        return _requeue_connection(args)
    only = selection_of(args)
    _check_priority(args.priority)
    with open_session(args) as session:
        asked = {"to": args.to, "limit": args.limit, "vhost": session.vhost}
        with planned(args, session, "requeue", args.source, asked):
            plan = plan_requeue(
                session, args.source, args.to, args.limit, only, args.priority,
                _rate(args), args.include_redriven,
            )  # fmt: skip
        would = {"would_move": plan.limit, "ready": plan.ready}
        refused = _declined_move(args, session, plan, plan.model_dump(), would)
        if refused is not None:
            return refused
        moved = _run_move(args, session, plan)
        left = session.ready_count_or_none(args.source)
    result = moved.result
    record = {
        "dry_run": False, **moved.counts, "left": left, "stopped": result.stopped,
        "held_after": moved.held_after,
    }  # fmt: skip
    held = (
        f" {count(result.held_back, 'message')} redriven {plan.hold_back_from} times or more "
        "held back (--include-redriven takes them too)."
        if result.held_back
        else ""
    )
    summary = (
        f"Moved {result.moved:,}; {result.failed + result.skipped:,} sent back to "
        f"{args.source!r}; "
        + (f"{left:,} ready there now." if left is not None else "the broker did not answer since.")
        + held
        + moved.doubled_words(args.source)
        + moved.held_words()
        + (f" Stopped: {result.stopped}." if not result.clean else "")
    )
    report(args, record, summary)
    return 0 if moved.clean else 1


def _check_priority(priority: int | None) -> None:
    if priority is not None and not 0 <= priority <= 255:
        raise WarrenError(f"--priority takes 0 to 255; {priority} is out of range.")


def _rate(args: argparse.Namespace) -> float | None:
    if args.rate is not None and args.rate <= 0:
        raise WarrenError(f"--rate takes messages per second above 0; {args.rate} is not.")
    return args.rate


def _requeue_connection(args: argparse.Namespace) -> int:
    """Unacked messages go back to ready only when their consumer's connection closes."""
    with open_session(args) as session:
        with planned(args, session, "requeue-connection", args.connection, {}):
            plan = plan_requeue_connection(session, args.connection)
        ask = Ask(
            "requeue-connection", plan.connection, plan.model_dump(), plan.sentence,
            "changed", answer=plan.connection,
        )  # fmt: skip
        dry_counts = {"unacked": plan.unacked, "would_lose": plan.loses}
        refused = declined(args, session, ask, plan.model_dump(), dry_counts)
        if refused is not None:
            return refused
        ready_after = requeue_connection(session, plan, actor(session), force=args.force)
    record = {
        "dry_run": False, **plan.model_dump(), "unacked_returned": plan.unacked,
        "ready_after": ready_after,
    }  # fmt: skip
    summary = (
        f"Closed {plan.connection!r}: {count(plan.unacked, 'message')} went back to ready; "
        + ", ".join(f"{queue!r} holds {ready:,} ready now" for queue, ready in ready_after.items())
        + "."
    )
    return report(args, record, summary)


def republish_messages(args: argparse.Namespace) -> int:
    _check_priority(args.priority)
    with open_session(args) as session:
        asked = {
            "priority": args.priority,
            "to": args.to,
            "routing_key": args.routing_key,
            "limit": args.limit,
            "vhost": session.vhost,
        }
        with planned(args, session, "republish", args.queue, asked):
            plan = plan_republish(
                session, args.queue, args.priority, args.to, args.routing_key, args.limit,
                _rate(args),
            )  # fmt: skip
        dry_record = plan.model_dump() | {"warnings": plan.warnings}
        refused = _declined_move(args, session, plan, dry_record, {"would_move": plan.limit})
        if refused is not None:
            return refused
        moved = _run_move(args, session, plan)
    record = {
        "dry_run": False,
        **moved.counts,
        "holding_queue": moved.holding,
        "warnings": plan.warnings,
    }
    summary = (
        f"Republished {moved.result.moved:,} with priority {args.priority}."
        + moved.doubled_words(args.queue)
        + moved.held_words()
        + (f" Some messages are still in holding queue {moved.holding!r}." if moved.holding else "")
    )
    report(args, record, summary)
    return 0 if moved.clean else 1


def _declined_move(
    args: argparse.Namespace, session: Session, plan: MovePlan, dry_record: dict, would: dict
) -> int | None:
    ask = Ask(plan.action, plan.source, plan.parameters(session.vhost), plan.sentence, "moved")
    return declined(args, session, ask, dry_record, would)


def _run_move(args: argparse.Namespace, session: Session, plan: MovePlan) -> Moved:
    """The confirmed move, with a progress line and Ctrl-C to stop it."""
    with _stoppable() as stop:
        moved = run_move(session, plan, actor(session), _progress(args), stop, args.force)
    if not args.json:
        print(file=sys.stderr)
    return moved


def peek_messages(args: argparse.Namespace) -> int:
    """A read on a classic queue; on a quorum queue a change (see actions/peek.py)."""
    with open_session(args) as session:
        plan = plan_peek(session, args.queue)
        result = peek(session, plan, args.count, actor(session), confirmed=args.yes)
    if args.json:
        print_json(result.model_dump(mode="json"))
        return 0
    # Said once the peek succeeded, so that a failure is its one sentence.
    print(f"warren: {PEEK_NOTICE}", file=sys.stderr)
    if not result.messages:
        print(f"Queue {args.queue!r} has no ready message.")
    for message in result.messages:
        print(format_message(message))
    cost = peek_sentence(plan, result)
    if cost is not None:
        print(f"warren: {cost}", file=sys.stderr)
    return 0


def purge_queue(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        with planned(args, session, "purge", args.queue, {"vhost": session.vhost}):
            plan = plan_purge(session, args.queue)
        # Destructive: on a terminal, the queue's name must be typed back.
        ask = Ask(
            "purge", args.queue, {"vhost": session.vhost}, plan.sentence, "purged", args.queue
        )
        refused = declined(args, session, ask, plan.model_dump(), {"would_purge": plan.ready})
        if refused is not None:
            return refused
        purged = purge(session, plan, actor(session))
    record = {"dry_run": False, "queue": args.queue, "purged": purged}
    return report(args, record, f"Purged {count(purged, 'ready message')} of {args.queue!r}.")


def bind_tenants(args: argparse.Namespace) -> int:
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
    with open_session(args) as session:
        parameters = specs[0].model_dump(exclude={"tenant"}) | {"tenants": tenants}
        sentence = bind_sentence(specs, session.exchange)
        ask = Ask("bind", ", ".join(tenants), parameters, sentence, "changed")
        refused = declined(args, session, ask, {"tenants": tenants}, {"tenants": len(tenants)})
        if refused is not None:
            return refused
        results = bind(session, specs, actor(session))
    records = [result.model_dump() for result in results]
    if args.json:
        print_json(records)
    else:
        print(format_table(records, BIND_COLUMNS))
    return 1 if any(result.outcome == "failed" for result in results) else 0


def unbind_tenant(args: argparse.Namespace) -> int:
    parameters = {"delete_queue": args.delete_queue, "force": args.force}
    with open_session(args) as session:
        sentence = unbind_sentence(session.exchange, args.tenant, args.delete_queue, args.force)
        ask = Ask("unbind", args.tenant, parameters, sentence, "changed", answer=args.tenant)
        refused = declined(args, session, ask, {"tenant": args.tenant, **parameters}, {})
        if refused is not None:
            return refused
        result = unbind(session, args.tenant, args.delete_queue, args.force, actor(session))
    summary = f"Unbound {args.tenant!r} from {', '.join(result.queues)}." + (
        f" Deleted {', '.join(result.deleted)} ({count(result.dropped, 'message')} dropped)."
        if result.deleted
        else ""
    )
    return report(args, result.model_dump(), summary)


def _tenant_file(path: str) -> list[str]:
    """Tenant ids from a file: one per line, or the first column of a CSV; blank lines, `#`
    comments and a `tenant` header are skipped."""
    try:
        return parse_tenant_list(Path(path).read_text())
    except OSError as exc:
        raise WarrenError(f"Cannot read {path}: {exc.strerror}.") from None


def planned(args: argparse.Namespace, session: Session, action: str, target: str, parameters: dict):
    """Around the plan: a plan that fails is audited as the action (see `access.planning`)."""
    return planning(session, actor(session), action, target, parameters, args.dry_run)


class Ask(NamedTuple):
    """A change to ask about: audited as `action` on `target`; refused, nothing was `undone`."""

    action: str
    target: str
    parameters: dict
    sentence: str
    undone: str
    answer: str = "yes"


def declined(
    args: argparse.Namespace, session: Session, ask: Ask, dry_record: dict, dry_counts: dict
) -> int | None:
    """The exit code when the change does not happen (a dry run, or no confirmation), each
    audited; None when it may go ahead."""
    if not args.dry_run and _confirmed(args, ask.sentence, ask.answer):
        return None
    log = audit_log(session.settings)
    with log.action(
        actor(session), ask.action, ask.target, ask.parameters, args.dry_run, session.vhost
    ) as entry:
        if args.dry_run:
            entry.counts = dry_counts
        else:
            entry.outcome = "refused"
    if args.dry_run:
        return report(args, {"dry_run": True, **dry_record}, ask.sentence)
    print(f"warren: {ask.sentence} Nothing was {ask.undone}: add --yes to do it.", file=sys.stderr)
    return 1


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


def capture_unrouted(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        asked = {"vhost": session.vhost}
        with planned(args, session, "capture", session.exchange, asked):
            plan = plan_capture(session)
        if plan.already:
            return report(args, {"dry_run": args.dry_run, **plan.model_dump()}, plan.sentence)
        ask = Ask("capture", plan.exchange, asked, plan.sentence, "changed")
        refused = declined(args, session, ask, plan.model_dump(), {})
        if refused is not None:
            return refused
        capture(session, plan, actor(session))
    record = {"dry_run": False, **plan.model_dump()}
    summary = (
        f"Capturing: what exchange {plan.exchange!r} cannot route now goes to queue "
        f"{plan.capture_queue!r}. `warren unrouted` lists it by tenant id."
    )
    return report(args, record, summary)


def move_captured(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        asked = {"tenant": args.tenant, "vhost": session.vhost}
        source = capture_names(session.exchange).queue
        with planned(args, session, "move-captured", source, asked):
            plan = plan_move_captured(session, args.tenant)
        would = {"would_move": plan.matching, "ready": plan.ready}
        refused = _declined_move(args, session, plan, plan.model_dump(), would)
        if refused is not None:
            return refused
        moved = _run_move(args, session, plan)
        summary = moved_captured_sentence(session, plan, moved)
    record = {"dry_run": False, **moved.counts, "to": plan.to}
    report(args, record, summary)
    return 0 if moved.clean else 1
