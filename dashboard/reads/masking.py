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
        """Headers with those named masked, and the patterns masked in every text value."""
        if not headers or not self.active:
            return dict(headers or {})
        return {
            name: MASK if str(name).casefold() in self.headers else self._in_value(value)
            for name, value in headers.items()
        }

    def masked_body(self, body: bytes, complete: bool = True) -> bytes:
        """The body with the JSON paths' values and the patterns' matches masked: JSON is
        written again (compact) where a path masked something; a body that is not UTF-8 has
        the patterns masked in its bytes. The first bytes of a longer body (`complete` False)
        cannot be read as JSON, so with JSON paths to mask, none of it is shown."""
        if not self.active or not body:
            return body
        if self.paths and not complete:
            return MASK.encode()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            for pattern in self.byte_patterns:
                body = pattern.sub(MASK.encode(), body)
            return body
        if self.paths:
            text = self._paths_masked(text)
        for pattern in self.patterns:
            text = pattern.sub(MASK, text)
        return text.encode("utf-8")

    def masked_fields(self, fields: dict) -> dict:
        """A message's other properties (message id, correlation id, reply-to...), with the
        patterns masked in their text."""
        return {name: self._in_value(value) for name, value in fields.items()}

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

    def _paths_masked(self, text: str) -> str:
        try:
            document = json.loads(text)
        except ValueError:
            return text
        masked = False
        for steps in self.paths:
            masked |= _mask_at(document, steps)
        return json.dumps(document, ensure_ascii=False) if masked else text

    def _in_value(self, value: Any) -> Any:
        if isinstance(value, str):
            for pattern in self.patterns:
                value = pattern.sub(MASK, value)
            return value
        if isinstance(value, bytes):
            for pattern in self.byte_patterns:
                value = pattern.sub(MASK.encode(), value)
            return value
        if isinstance(value, dict):
            return {key: self._in_value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._in_value(item) for item in value]
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
