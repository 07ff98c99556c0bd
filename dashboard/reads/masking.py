"""What Warren hides of messages wherever it reads them for a person: peek, browse, search,
export, and the selections of requeue, republish and discard. Headers by name, values at JSON
paths, and text matching regular expressions are replaced by MASK before anything is shown,
counted, compared or written out, so that masked data cannot be found by searching for it
either (WARREN_MASK_HEADERS, WARREN_MASK_JSON_PATHS, WARREN_MASK_PATTERNS).

A message moved by an action keeps its payload: only what is read for a person is masked.
"""

import copy
import functools
import json
import re
from typing import Any

from dashboard.settings import JSON_PATH_STEP, Settings

MASK = "***"
_STEP = re.compile(JSON_PATH_STEP)


def path_steps(path: str) -> tuple[str | int, ...]:
    """`$.card.number` -> ("card", "number"); `$.items[*].email` -> ("items", "*", "email");
    ValueError for anything else."""
    if not path.startswith("$") or len(path) < 2:
        raise ValueError(f"{path!r} is not a JSON path: expected $.name, $.name[*] or $.name[0]")
    steps, at = [], 1
    for match in _STEP.finditer(path, 1):
        if match.start() != at:
            break
        name, index = match.groups()
        steps.append(name if name is not None else ("*" if index == "*" else int(index)))
        at = match.end()
    if at != len(path):
        raise ValueError(f"{path!r} is not a JSON path: expected $.name, $.name[*] or $.name[0]")
    return tuple(steps)


class Masking:
    """The masking rules of one configuration."""

    def __init__(self, headers: list[str], json_paths: list[str], patterns: list[str]):
        self.headers = frozenset(name.casefold() for name in headers)
        self.paths = [path_steps(path) for path in json_paths]
        self.patterns = [re.compile(pattern) for pattern in patterns]
        self.byte_patterns = [re.compile(pattern.encode()) for pattern in patterns]

    @property
    def active(self) -> bool:
        return bool(self.headers or self.paths or self.patterns)

    def masked_headers(self, headers: dict | None) -> dict:
        """Headers with those named masked (nested tables too), and the patterns masked in every
        value."""
        if not headers or not self.active:
            return dict(headers or {})
        return self._in_value(headers, self.headers)

    def masked_body(self, body: bytes, complete: bool = True) -> bytes:
        """The body with the JSON paths' values and the patterns' matches masked. JSON is read,
        its values masked (as text, escapes decoded, and numbers as their digits) and written
        again, compact, where anything was masked; other text has the patterns masked in it,
        and a body that is not UTF-8 in its bytes. The first bytes of a longer body (`complete`
        False) may end inside a match or a JSON value: none of it is shown."""
        if not self.active or not body:
            return body
        if not complete:
            return MASK.encode()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            for pattern in self.byte_patterns:
                body = pattern.sub(MASK.encode(), body)
            return body
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            for pattern in self.patterns:
                text = pattern.sub(MASK, text)
            return text.encode("utf-8")
        by_path = any([_mask_at(document, steps) for steps in self.paths])
        masked = self._in_value(document)
        if not by_path and masked == document:
            return body
        return json.dumps(masked, ensure_ascii=False).encode("utf-8")

    def masked_value(self, value: Any) -> Any:
        """A value (a message id, a message's other properties...) with the patterns masked in
        its text."""
        return self._in_value(value)

    def masked_properties(self, properties: Any) -> Any:
        """A copy of pika's properties with the headers and the other properties masked."""
        if not self.active:
            return properties
        masked = copy.copy(properties)
        for name, value in vars(properties).items():
            if name == "headers":
                masked.headers = self.masked_headers(value) if value else value
            else:
                setattr(masked, name, self._in_value(value))
        return masked

    def _in_value(self, value: Any, names: frozenset = frozenset()) -> Any:
        """`value` with the patterns masked in its text and numbers, and, in tables, the
        values of the keys in `names`."""
        if isinstance(value, str):
            for pattern in self.patterns:
                value = pattern.sub(MASK, value)
            return value
        if isinstance(value, bytes):
            for pattern in self.byte_patterns:
                value = pattern.sub(MASK.encode(), value)
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            digits = str(value)
            return MASK if any(pattern.search(digits) for pattern in self.patterns) else value
        if isinstance(value, dict):
            return {
                key: MASK if str(key).casefold() in names else self._in_value(item, names)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._in_value(item, names) for item in value]
        return value


def _mask_at(node: Any, steps: tuple[str | int, ...]) -> bool:
    """Masks the values at `steps` under `node`, in place; whether any was there."""
    step, rest = steps[0], steps[1:]
    masked = False
    for key in _keys(node, step):
        if rest:
            masked |= _mask_at(node[key], rest)
        else:
            node[key] = MASK
            masked = True
    return masked


def _keys(node: Any, step: str | int) -> list:
    """The keys of `node` that one step of a path names (none where it names nothing)."""
    if isinstance(node, list):
        if step == "*":
            return list(range(len(node)))
        return [step] if isinstance(step, int) and step < len(node) else []
    if isinstance(node, dict) and isinstance(step, str) and step != "*" and step in node:
        return [step]
    return []


def masking_of(settings: Settings) -> Masking:
    return _masking(
        tuple(settings.mask_headers), tuple(settings.mask_json_paths), tuple(settings.mask_patterns)
    )


@functools.lru_cache(maxsize=8)
def _masking(headers: tuple, paths: tuple, patterns: tuple) -> Masking:
    return Masking(list(headers), list(paths), list(patterns))
