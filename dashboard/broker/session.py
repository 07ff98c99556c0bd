"""One user's way to the broker: built once per user, passed to every read and action.

A console session that logged in, the console's service user, or one CLI run: each has one
`Session` holding its settings, one management API client, one AMQP connection for short work
(counts, purges, declarations) and what the broker says the user is. Nothing below builds a
second client for the same user.
"""

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dashboard.broker.management import ManagementClient
from dashboard.broker.metrics import QueueMetrics, metrics_url
from dashboard.broker.versions import BrokerVersion
from dashboard.errors import BrokerError, BrokerUnreachable
from dashboard.people import Person
from dashboard.settings import Settings

if TYPE_CHECKING:
    import pika

# AMQP (`dashboard.broker.amqp`, pika) is imported where a session first uses it: many runs
# never do (`warren tenants`), and pika is a tenth of their start-up.

T = TypeVar("T")

# An action's access check right after the page asked needs no second question; a tag taken
# away takes effect within this time.
WHOAMI_SECONDS = 30.0
VERSION_SECONDS = 300.0
# The short-work connection is reused while it was used this recently. Idle longer, nothing has
# pumped its heartbeats (a blocking connection does so only while in use): a fresh one is safer.
AMQP_REUSE_SECONDS = 20.0
# The management API's counts lag behind AMQP by up to one statistics interval (5 s by default):
# a queue an action changed is read exactly over AMQP for this long after.
CHANGED_SECONDS = 15.0


@dataclass
class _ShortWork:
    """The short-work connection and when it was last used: one box, so that every view of a
    session (`Session.acting_for`) uses the same."""

    connection: "pika.BlockingConnection | None" = None
    used_at: float = 0.0


class Session:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.client = ManagementClient(settings)
        url = metrics_url(settings)
        self.metrics = QueueMetrics(url, settings.request_timeout) if url else None
        # What is asked again only after a while: name -> (when, answer).
        self._remembered: dict[str, tuple[float, Any]] = {}
        self._remembered_lock = threading.Lock()
        # A blocking connection is not thread-safe: one user of it at a time.
        self._amqp_lock = threading.Lock()
        self._short_work = _ShortWork()
        # Marked by actions (page or job threads), read by the polls' threads.
        self._changed_lock = threading.Lock()
        self._changed: dict[str, float] = {}
        # vhost -> when an action last changed its tenant bindings (`topology_changed`).
        self._rebound: dict[str, float] = {}
        # The person of a team this view of the session acts for (`acting_for`); None: the
        # broker user itself.
        self.person: Person | None = None

    def acting_for(self, person: Person) -> "Session":
        """This session for one person signed in through the team's identity provider: the
        same broker user, client, connection and memory (every field is shared, none is
        reassigned), with the person whose role decides what they may change."""
        view = copy.copy(self)
        view.person = person
        return view

    @property
    def vhost(self) -> str:
        return self.settings.vhost

    @property
    def exchange(self) -> str:
        """The tenant exchange."""
        return self.settings.tenant_exchange

    @property
    def username(self) -> str:
        return self.settings.username

    def whoami(self) -> dict:
        """`GET /api/whoami` (the user and its tags), asked again after WHOAMI_SECONDS."""
        return self.remembered("whoami", WHOAMI_SECONDS, self.client.whoami)

    def broker_version(self) -> BrokerVersion:
        """The answering node's version, asked again after VERSION_SECONDS (an upgrade)."""
        return self.remembered("version", VERSION_SECONDS, self.client.broker_version)

    def vhosts(self, fresh: bool = False) -> list[str]:
        """The vhosts this user may see, by name, asked again after WHOAMI_SECONDS (at once
        when `fresh`: one may have been created since)."""
        listed = self.remembered("vhosts", 0 if fresh else WHOAMI_SECONDS, self.client.list_vhosts)
        return sorted(str(vhost["name"]) for vhost in listed)

    def cluster_name(self) -> str:
        """The cluster's name, asked again after VERSION_SECONDS (a metrics endpoint's answer
        must name the same one)."""
        return self.remembered("cluster", VERSION_SECONDS, self.client.cluster_name)

    def remembered(self, name: str, seconds: float, ask: Callable[[], T]) -> T:
        """`ask()`'s answer, asked again once it is older than `seconds` (a failure is not
        remembered)."""
        with self._remembered_lock:
            known = self._remembered.get(name)
        if known is not None and time.monotonic() - known[0] <= seconds:
            return known[1]
        answer = ask()
        with self._remembered_lock:
            self._remembered[name] = (time.monotonic(), answer)
        return answer

    def amqp_parameters(self, name: str) -> "list[pika.URLParameters]":
        """For a connection of its own (a move drives one with its own I/O loop)."""
        from dashboard.broker.amqp import connection_parameters

        return connection_parameters(self.settings, name)

    def on_amqp(self, work: "Callable[[pika.BlockingConnection], T]") -> T:
        """`work` on this session's short-work connection, which nobody else uses meanwhile.

        A connection the broker closed is replaced on the next call, never retried within one:
        `work` may have changed something before it failed.
        """
        from pika.exceptions import AMQPConnectionError

        with self._amqp_lock:
            connection = self._short_work_connection()
            try:
                return work(connection)
            except AMQPConnectionError:
                self._drop_amqp()
                raise BrokerUnreachable(
                    f"The AMQP connection to {self.settings.display_amqp_url()} was lost."
                ) from None
            finally:
                self._short_work.used_at = time.monotonic()

    def on_channel(self, action: Callable[[Any], T], refused: str) -> T:
        """`action` on a new channel of the short-work connection; a refusal is the sentence
        `refused` with the broker's words."""
        from dashboard.broker.amqp import on_new_channel

        return self.on_amqp(lambda connection: on_new_channel(connection, action, refused))

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready, consumers) of `queue` now, from AMQP: no stats lag. A missing queue is
        NotFound."""
        method = self.on_channel(
            lambda channel: channel.queue_declare(queue, passive=True).method,
            f"Queue {queue!r} cannot be read",
        )
        return method.message_count, method.consumer_count

    def ready_count(self, queue: str) -> int:
        return self.queue_counts(queue)[0]

    def ready_count_or_none(self, queue: str) -> int | None:
        """The ready count, or None when the broker does not answer (a result after a fault
        still reports what it knows)."""
        try:
            return self.ready_count(queue)
        except BrokerError:
            return None

    def ready_once_back(self, queue: str, back: int, seconds: float = 3) -> int:
        """The queue's ready count once `back` messages a read put back are in it: a quorum
        queue applies returns after the read ended (seen on 3.10: 0 ready right after a peek of
        5). A consumer may take them first, so after `seconds` the count is what it is."""
        deadline = time.monotonic() + seconds
        ready = self.ready_count(queue)
        while ready < back and time.monotonic() < deadline:
            time.sleep(0.05)
            ready = self.ready_count(queue)
        return ready

    def changed(self, *queues: str) -> None:
        """An action changed `queues`: reads count them exactly for CHANGED_SECONDS."""
        now = time.monotonic()
        with self._changed_lock:
            self._changed.update(dict.fromkeys(queues, now))

    def topology_changed(self) -> None:
        """An action changed the tenant bindings of this vhost: its listings are stale."""
        with self._changed_lock:
            self._rebound[self.vhost] = time.monotonic()

    def topology_changed_at(self) -> float:
        """When (`time.monotonic`) an action last changed this vhost's tenant bindings; 0:
        never, in this process."""
        with self._changed_lock:
            return self._rebound.get(self.vhost, 0.0)

    def recently_changed(self) -> list[str]:
        now = time.monotonic()
        with self._changed_lock:
            # In place: every view of the session (`acting_for`) holds this very dict.
            for queue in [q for q, at in self._changed.items() if now - at >= CHANGED_SECONDS]:
                del self._changed[queue]
            return list(self._changed)

    def _short_work_connection(self) -> "pika.BlockingConnection":
        from dashboard.broker.amqp import connect

        short = self._short_work
        idle = time.monotonic() - short.used_at > AMQP_REUSE_SECONDS
        if short.connection is not None and (idle or not short.connection.is_open):
            self._drop_amqp()
        if short.connection is None:
            short.connection = connect(self.settings, f"warren {self.username}")
        return short.connection

    def _drop_amqp(self) -> None:
        if self._short_work.connection is not None:
            from dashboard.broker.amqp import close_quietly

            close_quietly(self._short_work.connection)
        self._short_work.connection = None

    def close(self) -> None:
        with self._amqp_lock:
            self._drop_amqp()
        self.client.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
