"""The tenant topology, kept between processes for WARREN_TOPOLOGY_SECONDS.

Listing the topology is most of a one-shot's wait at scale (10,000 tenant queues: the queues'
settings and the tenant bindings, 0.5 s of the broker's work), while the counts alone come
from the metrics endpoint in a fifth of that. So every listing (the console's, the watcher's,
a one-shot's) is kept in the history's database, and a later process whose counts name the same
queues reuses a listing younger than WARREN_TOPOLOGY_SECONDS, as the console's own poll does
with the listing it holds. A queue that appeared or went is seen in the counts, and the
listing is asked again; Warren's own bind and unbind drop the kept listing (`forget_topology`).
What only another tool changed in place (a binding added to a queue that was there, a
policy's dead-letter exchange) shows within WARREN_TOPOLOGY_SECONDS.

Kept per broker, user and vhost: a user is never shown a listing made for another. A store
that cannot be read or written costs the speed, never the answer.
"""

import json
import logging
import operator
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from dashboard.broker.models import ListedQueue
from dashboard.broker.session import Session
from dashboard.database import Database, DatabaseError, Store, Transaction
from dashboard.reads.overview import Topology
from dashboard.settings import Settings

log = logging.getLogger(__name__)


def _tables(db: Transaction) -> None:
    db.execute(
        """CREATE TABLE IF NOT EXISTS topologies (
            broker TEXT NOT NULL,
            username TEXT NOT NULL,
            vhost TEXT NOT NULL,
            exchange TEXT NOT NULL,
            listed_at {real} NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (broker, username, vhost, exchange)
        )"""
    )


TOPOLOGY = Store("topology", [_tables])


@dataclass
class _Body:
    """A kept listing: its queues' settings only (counts come fresh from the reader)."""

    tenants: dict[str, tuple[str, ...]]
    queues: list[ListedQueue]
    dead_letter_routes: dict[str, dict[str, str]]


# Read in pydantic's core from the stored text: 10,000 queues in about 20 ms.
_BODY = TypeAdapter(_Body)


class KeptTopologies:
    """The topologies of one broker (its management URL) as one user lists them."""

    def __init__(self, location: Path | str, broker: str, username: str, max_age: float):
        self.database = Database(location, TOPOLOGY)
        self.key = (broker, username)
        self.max_age = max_age

    def load(self, vhost: str, exchange: str) -> Topology | None:
        """The kept listing of `vhost`'s tenant exchange, if one is younger than `max_age` (by
        the database's clock: a team's hosts may disagree); None otherwise, or where the store
        cannot be read."""
        try:
            with self.database.transaction() as db:
                row = db.execute(
                    "SELECT body FROM topologies WHERE broker = ? AND username = ? AND vhost = ? "
                    "AND exchange = ? AND listed_at >= {now} - ?",
                    (*self.key, vhost, exchange, self.max_age),
                ).fetchone()
        except DatabaseError as exc:
            log.warning("no kept topology: %s", exc)
            return None
        if row is None:
            return None
        try:
            body = _BODY.validate_json(row[0])
        except ValidationError:
            return None  # kept by another version of Warren: listed again
        queues = {queue.name: queue for queue in body.queues}
        return Topology(vhost, exchange, body.tenants, queues, body.dead_letter_routes, False)

    def keep(self, topology: Topology, previous: Topology | None = None) -> None:
        """`topology`'s settings, as listed now, in place of what was kept of its vhost; where
        they are the same as `previous`'s (the listing before, which its reader kept), only
        their date is renewed: at 100,000 queues the text is 24 MB and a third of a second of
        CPU to write, every WARREN_TOPOLOGY_SECONDS, for settings that rarely change."""
        if previous is not None and _same_settings(topology, previous):
            self._renew(topology)
            return
        body = json.dumps(
            {
                "tenants": topology.tenants,
                "queues": [_settings_of(queue) for queue in topology.queues.values()],
                "dead_letter_routes": topology.dead_letter_routes,
            },
            separators=(",", ":"),
        )
        # One statement: two processes keeping the same listing at once both succeed.
        self._write(
            "INSERT INTO topologies (broker, username, vhost, exchange, listed_at, body) "
            "VALUES (?, ?, ?, ?, {now}, ?) ON CONFLICT (broker, username, vhost, exchange) "
            "DO UPDATE SET listed_at = excluded.listed_at, body = excluded.body",
            (*self.key, topology.vhost, topology.exchange, body),
        )

    def _renew(self, topology: Topology) -> None:
        self._write(
            "UPDATE topologies SET listed_at = {now} WHERE broker = ? AND username = ? "
            "AND vhost = ? AND exchange = ?",
            (*self.key, topology.vhost, topology.exchange),
        )

    def drop(self, vhost: str) -> None:
        """Every kept listing of `vhost`, whoever listed it: its bindings changed."""
        self._write("DELETE FROM topologies WHERE broker = ? AND vhost = ?", (self.key[0], vhost))

    def _write(self, sql: str, parameters: tuple) -> None:
        try:
            with self.database.transaction() as db:
                db.execute(sql, parameters)
        except DatabaseError as exc:
            log.warning("kept topologies not written: %s", exc)


# What a listing without statistics says of a queue, under the model's field names.
SETTINGS = ("name", "type", "state", "policy", "dead_letter_arguments", "dead_letter_policy")
_settings = operator.attrgetter(*SETTINGS)


def _same_settings(one: Topology, other: Topology) -> bool:
    """Whether two listings of a vhost say the same of its bindings and queues' settings."""
    if (one.tenants, one.dead_letter_routes) != (other.tenants, other.dead_letter_routes):
        return False
    if one.queues.keys() != other.queues.keys():
        return False
    theirs = map(other.queues.get, one.queues)
    return all(map(operator.eq, map(_settings, one.queues.values()), map(_settings, theirs)))


def _settings_of(queue: ListedQueue) -> dict:
    return dict(zip(SETTINGS, _settings(queue), strict=True))


def kept_topologies(settings: Settings) -> KeptTopologies:
    """The kept topologies, in the history's database (a file beside it, or the team's)."""
    return KeptTopologies(
        settings.database(settings.history_db),
        settings.management_url,
        settings.username,
        settings.topology_seconds,
    )


def forget_topology(session: Session) -> None:
    """An action changed the tenant bindings of the session's vhost: the listings this process
    holds and those kept in the database are listed again."""
    session.topology_changed()
    kept_topologies(session.settings).drop(session.vhost)
