"""Text for the page: ages, clock times, and broker-supplied names made inert in markdown."""

import re
import string
from datetime import UTC, datetime

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them
# also disarms Streamlit's own directives (`:red[...]`, `:material/...:`, `$...$`).
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")


def literal(text: str) -> str:
    """`text` (a queue name, an error sentence) shown as itself inside markdown."""
    return _PUNCTUATION.sub(r"\\\1", text).replace("\n", " ")


def age_text(when: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def clock_text(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")
