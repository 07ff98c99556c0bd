"""Names as a person may safely read them, in a terminal and on a page.

Broker names, payloads and URLs may hold terminal escape sequences (C0 and C1 controls), text
direction overrides (`tenant.\u202egnp.exe` displays as "tenant.exe.png") and zero-width
characters (`acme\u200b` displays as `acme`): each is shown as its escape (`\\x1b`, `\\u202e`),
so that two names that look alike on screen are never two different queues unseen.
"""

import re

# C0 and C1 controls, the bidi marks, embeddings, overrides and isolates, the zero-width
# characters, the word joiner and the byte order mark.
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def visible(text: str) -> str:
    """`text` with every invisible or direction-changing character shown as its escape."""
    return _HIDDEN.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
