"""What the CLI prints: plain-text tables, peeked messages, and one line or one JSON record per
result. Broker-supplied text never reaches the terminal as control characters."""

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard.actions.audit import count
from dashboard.visible import visible

if TYPE_CHECKING:
    # For the annotations only: the verbs that print messages have imported it already, and
    # the others (`warren tenants`) need not.
    from dashboard.reads.peek import Death, PeekedMessage


def report(args: argparse.Namespace, record: dict, sentence: str) -> int:
    """The result: `record` as JSON with --json, else `sentence`; exit code 0."""
    print(json.dumps(record, ensure_ascii=False) if args.json else sentence)
    return 0


def print_json(records) -> None:
    print(json.dumps(records, ensure_ascii=False))


def format_table(records: list[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table: numbers right-aligned with thousands separators, text left-aligned."""
    cells = [[cell(record[key]) for key, _ in columns] for record in records]
    # A number not known (None) is an empty cell in a column of numbers, still right-aligned.
    numeric = [all(isinstance(record[key], int | None) for record in records) for key, _ in columns]
    widths = [
        max([len(title), *(len(row[i]) for row in cells)]) for i, (_, title) in enumerate(columns)
    ]
    lines = [[title for _, title in columns], *cells]
    return "\n".join(
        "  ".join(_align(text, widths[i], numeric[i]) for i, text in enumerate(line)).rstrip()
        for line in lines
    )


def cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else visible(str(value))


def _align(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def size(number: int | None) -> str | None:
    """Bytes in binary units, as a person reads them: `150.1 MiB`, `9.4 GiB`."""
    if number is None:
        return None
    if number < 1024:
        return count(number, "byte")
    value, unit = number / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:,.1f} {unit}"


def format_message(message: "PeekedMessage") -> str:
    lines = [
        f"#{message.position}  exchange={cell(message.exchange) or '(default)'}  "
        f"routing key={cell(message.routing_key)}  redelivered={message.redelivered}  "
        f"{count(message.size, 'byte')}, {message.kind}",
        *(f"  {key}: {cell(str(value))}" for key, value in message.properties.items()),
        *(f"  header {cell(key)}: {cell(str(value))}" for key, value in message.headers.items()),
        *(_death_line(death) for death in message.deaths),
        *("    " + cell(line) for line in message.shown.splitlines()),
    ]
    if message.truncated:
        lines.append(f"    ... (cut; {count(message.size, 'byte')} in all)")
    return "\n".join(lines)


def _death_line(death: "Death") -> str:
    keys = cell(", ".join(death.routing_keys))
    when = f", last {death.time.isoformat()}" if death.time else ""
    source = cell(death.exchange) or "(default)"
    return (
        f"  died {death.count}x: {death.reason} in {cell(death.queue)} "
        f"(from {source}, keys {keys}{when})"
    )
