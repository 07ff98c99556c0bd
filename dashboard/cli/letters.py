"""The CLI's verbs for a queue of dead letters at incident scale: browse (tally and pages),
export a selection as JSON lines, discard a selection, publish an exported file back."""

import argparse
import contextlib
import sys

from dashboard.actions.audit import count
from dashboard.actions.browse import browse, export
from dashboard.actions.discard import discard, plan_discard
from dashboard.actions.publish import plan_publish, publish, read_export
from dashboard.cli.changes import Ask, actor, declined, planned
from dashboard.cli.output import format_message, format_table, print_json, report
from dashboard.cli.reads import open_session
from dashboard.cli.selecting import selection_of
from dashboard.errors import WarrenError
from dashboard.reads.dead_letters import Tally
from dashboard.reads.peek import plan_peek

TALLIES = (
    ("by_reason", "REASON"),
    ("by_queue", "QUEUE"),
    ("by_tenant", "TENANT"),
    ("by_minute", "FIRST DEATH (UTC MINUTE)"),
)


def browse_queue(args: argparse.Namespace) -> int:
    selection = selection_of(args)
    with open_session(args) as session:
        plan = plan_peek(session, args.queue)
        result = browse(
            session, plan, selection, actor(session), args.offset, args.size, args.by_header,
            confirmed=args.yes,
        )  # fmt: skip
    if args.json:
        print_json(result.model_dump(mode="json"))
        return 0
    chosen = f" with {selection.words}" if selection.active else ""
    print(
        f"Queue {args.queue!r}: looked through {count(result.seen, 'message')} in "
        f"{result.seconds:.1f} s, all still there in their order; {result.matching:,} "
        f"match{chosen}; {result.tally.redriven:,} of them died again after a redrive."
    )
    for table in _tally_tables(result.tally):
        print()
        print(table)
    for message in result.page:
        print()
        print(format_message(message))
    shown_to = result.offset + len(result.page)
    if shown_to < result.matching:
        print(f"\nShown: matches {result.offset + 1:,} to {shown_to:,}; --offset {shown_to} next.")
    return 0


def _tally_tables(tally: Tally) -> list[str]:
    columns = [*TALLIES, *((("by_header", f"HEADER {tally.header}"),) if tally.header else ())]
    return [
        format_table(
            [{"value": value, "messages": n} for value, n in getattr(tally, key).items()],
            (("value", title), ("messages", "MESSAGES")),
        )
        for key, title in columns
        if getattr(tally, key)
    ]


def export_queue(args: argparse.Namespace) -> int:
    selection = selection_of(args)
    with open_session(args) as session, _output(args.file) as out:
        plan = plan_peek(session, args.queue)
        written = export(session, plan, selection, out, actor(session), confirmed=args.yes)
    where = "standard output" if args.file == "-" else args.file
    print(
        f"warren: exported {count(written, 'message')} of {args.queue!r} to {where}; every "
        "message is still in the queue.",
        file=sys.stderr,
    )
    return 0


@contextlib.contextmanager
def _output(path: str):
    if path == "-":
        yield sys.stdout
        return
    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise WarrenError(f"Cannot write {path}: {exc.strerror}.") from None
    with handle:
        yield handle


def discard_messages(args: argparse.Namespace) -> int:
    selection = selection_of(args)
    with open_session(args) as session:
        asked = {"vhost": session.vhost, "filter": selection.model_dump(exclude_defaults=True)}
        with planned(args, session, "discard", args.queue, asked):
            plan = plan_discard(session, args.queue, selection)
        # Destructive: on a terminal, the queue's name must be typed back.
        ask = Ask(
            "discard", args.queue, plan.parameters(session.vhost), plan.sentence, "deleted",
            answer=args.queue,
        )  # fmt: skip
        refused = declined(args, session, ask, plan.model_dump(), {"ready": plan.ready})
        if refused is not None:
            return refused
        done = discard(session, plan, actor(session))
    record = {"dry_run": False, **done.model_dump()}
    summary = (
        f"Discarded {count(done.discarded, 'message')} of {args.queue!r} (their ids are in the "
        f"audit log); {done.ready_after:,} ready there now."
    )
    return report(args, record, summary)


def publish_file(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0:
        raise WarrenError(f"--rate takes messages per second above 0; {args.rate} is not.")
    with open_session(args) as session:
        asked = {"vhost": session.vhost, "file": args.file}
        with planned(args, session, "publish", args.queue or session.exchange, asked):
            text = read_export(args.file)
            plan = plan_publish(
                session, args.file, text, args.queue, args.routing_key, args.skip, args.rate
            )
        parameters = plan.parameters(session.vhost)
        ask = Ask("publish", plan.target, parameters, plan.sentence, "published")
        dry = plan.model_dump(exclude={"messages"})
        refused = declined(args, session, ask, dry, {"would_publish": plan.publishing})
        if refused is not None:
            return refused
        done = publish(session, plan, actor(session), force=args.force)
    held = "".join(
        f" {queue!r} holds {ready:,} ready now." for queue, ready in done.ready_after.items()
    )
    stopped = (
        f" Stopped: {done.stopped}; the messages before it are published: rerun with "
        f"--skip {done.resume_skip} to go on."
        if done.stopped
        else ""
    )
    report(
        args,
        {"dry_run": False, **done.model_dump()},
        f"Published {done.published:,}.{held}{stopped}",
    )
    return 1 if done.stopped else 0
