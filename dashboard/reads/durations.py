"""Durations as people read them: `42 s`, `3 min 5 s`, `2 h 10 min`."""

from functools import lru_cache


def duration_text(seconds: float) -> str:
    return _text_of(max(0, int(seconds)))


# A poll words the wait of every backlogged row, most of them the same few seconds apart.
@lru_cache(maxsize=4096)
def _text_of(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
