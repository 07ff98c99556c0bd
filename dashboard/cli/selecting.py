"""The flags that select messages, the same for every verb that takes a selection (requeue,
browse, export, discard)."""

import argparse
from typing import TYPE_CHECKING

from dashboard.errors import WarrenError

if TYPE_CHECKING:
    from dashboard.reads.selection import Selection


def add_selection(command: argparse.ArgumentParser) -> None:
    """The flags that select messages, the same for every verb that takes a selection."""
    command.add_argument("--tenant", help="only those that died with this routing key")
    command.add_argument("--reason", help="only this x-death reason (rejected, expired, ...)")
    command.add_argument("--header", help="only those whose header NAME=VALUE")
    command.add_argument(
        "--message-id", action="append", default=[], help="only this message id (repeat)"
    )
    command.add_argument("--text", help="only those whose body contains this text")


def selection_of(args: argparse.Namespace) -> "Selection":
    # Imported here: every run builds the parser (`add_selection`), few verbs select messages.
    from dashboard.reads.selection import Selection

    header, value = None, None
    if args.header:
        if "=" not in args.header:
            raise WarrenError(f"--header takes NAME=VALUE; {args.header!r} has no '='.")
        header, value = args.header.split("=", 1)
    return Selection(
        tenant=args.tenant,
        reason=args.reason,
        header=header,
        value=value,
        message_ids=args.message_id,
        text=args.text,
    )
