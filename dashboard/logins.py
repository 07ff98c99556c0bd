"""Logins kept across reloads (WARREN_AUTH=login). The browser keeps only a random token, in a
cookie; which user and password it stands for stays in this process, so the password never
reaches the browser. A token lasts WARREN_LOGIN_KEEP_SECONDS from the login, ends at logout,
and ends with the process: a restarted console asks everyone to log in again."""

import secrets
import threading
import time
from collections.abc import Callable
from typing import NamedTuple


class Credentials(NamedTuple):
    username: str
    password: str


class KeptLogins:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._until: dict[str, tuple[Credentials, float]] = {}
        self._lock = threading.Lock()

    def keep(self, credentials: Credentials) -> str:
        """A new token for `credentials`, valid for `seconds` from now."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            # Expired tokens go when a new one comes, so the table holds only live logins.
            self._until = {key: kept for key, kept in self._until.items() if kept[1] > now}
            self._until[token] = (credentials, now + self.seconds)
        return token

    def redeem(self, token: str) -> Credentials | None:
        """The credentials `token` stands for while it is valid; else None."""
        with self._lock:
            kept = self._until.get(token)
        if kept is None or kept[1] <= self._clock():
            return None
        return kept[0]

    def forget(self, token: str) -> None:
        with self._lock:
            self._until.pop(token, None)

    def __len__(self) -> int:
        """Tokens held, expired ones not yet swept included."""
        with self._lock:
            return len(self._until)
