"""Text for the page: ages, clock times, and broker-supplied names made inert in markdown."""

import re
import string
from datetime import UTC, datetime

from dashboard.reads.durations import duration_text

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them
# also disarms Streamlit's own directives (`:red[...]`, `:material/...:`, `$...$`).
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")
# Line breaks would start a new markdown block; other control characters have no business here.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def literal(text: str) -> str:
    """`text` (a queue name, an error sentence) shown as itself inside markdown."""
    return _PUNCTUATION.sub(r"\\\1", _CONTROL.sub(" ", text))


def age_text(when: datetime, now: datetime | None = None) -> str:
    return duration_text(((now or datetime.now(UTC)) - when).total_seconds())


def clock_text(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")
