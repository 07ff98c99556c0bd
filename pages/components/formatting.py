"""Text for the page: ages, clock times, and broker-supplied names made inert in markdown."""

import re
import string
from datetime import UTC, datetime

from dashboard.reads.durations import duration_text
from dashboard.visible import visible

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them
# also disarms Streamlit's own directives (`:red[...]`, `:material/...:`, `$...$`).
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")


# What Streamlit's markdown (remark-gfm) turns into a live link, whatever escapes it holds: it
# finds them in the parsed text, after the backslashes are gone. Code spans are never linked.
_LINK_LIKE = re.compile(r"(?:https?://|www\.)\S*|[-.\w+]+@[-\w]+(?:\.[-\w]+)+")


def literal(text: str) -> str:
    """`text` (a queue name, an error sentence, a URL's parameter) shown as itself inside
    markdown and never as a link: invisible and direction-changing characters as their escapes
    (a line break too, which would start a new markdown block), what would become a link as code.
    """
    shown = visible(text)
    parts, start = [], 0
    for match in _LINK_LIKE.finditer(shown):
        parts += [_escaped(shown[start : match.start()]), _code(match.group())]
        start = match.end()
    return "".join([*parts, _escaped(shown[start:])])


def _escaped(text: str) -> str:
    return _PUNCTUATION.sub(r"\\\1", text)


def _code(text: str) -> str:
    """`text` as a code span, fenced by more backticks than any run of them inside it."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    # A span that begins or ends with a backtick needs a space before its fence.
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def age_text(when: datetime, now: datetime | None = None) -> str:
    return duration_text(((now or datetime.now(UTC)) - when).total_seconds())


def clock_text(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")


def typed_back(typed: str, name: str) -> bool:
    """Whether a confirmation typed `name` back: as it is, or as shown (a name with invisible
    characters cannot be typed, only its escapes can)."""
    return typed in (name, visible(name))
