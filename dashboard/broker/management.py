"""The RabbitMQ management HTTP API client: the one place that builds URLs and speaks HTTP.

Each method says which permission it needs and whether it changes anything on the broker.
"""

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dashboard.broker.models import BINDING_COLUMNS
from dashboard.broker.versions import BrokerVersion
from dashboard.errors import (
    BrokerError,
    BrokerUnreachable,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ServerError,
    Unauthorized,
    VhostMissing,
)
from dashboard.settings import Settings

# Connection set-up fails fast; reading may take the configured timeout (big listings are slow).
CONNECT_TIMEOUT = 3.05
IDEMPOTENT = frozenset({"GET", "HEAD"})
# Bad credentials: "Login failed" up to 3.x, "Not_Authorized" from 4.0.
LOGIN_FAILED = ("Login failed", "Not_Authorized")
# Per list of node URLs, the index of the node that answered last: clients start there, so
# that a stopped node costs one failed connection, not one per request.
_answering: dict[tuple[str, ...], int] = {}
# How much of a long answer is read at a time (`get_each`).
CHUNK_BYTES = 1 << 20
T = TypeVar("T")


def _as_is(item: Any) -> Any:
    return item


def api_path(*segments: str) -> str:
    """`/api/` followed by each segment quoted whole: vhost `/` is `%2F`, and `#?% /` are data."""
    return "/api/" + "/".join(quote(segment, safe="") for segment in segments)


def _retrying_session(auth: tuple[str, str]) -> requests.Session:
    # Only GETs are retried after a request was sent; a refused connection sent nothing, so any
    # method may retry that. One read retry only: a hanging node would multiply the wait.
    retry = Retry(
        total=3,
        connect=2,
        read=1,
        status=2,
        backoff_factor=0.2,
        status_forcelist=(502, 503, 504),
        allowed_methods=IDEMPOTENT,
        raise_on_status=False,
    )
    session = requests.Session()
    session.auth = auth
    session.headers["Accept"] = "application/json"
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Answering(NamedTuple):
    """The node that serves a client's requests, and its RabbitMQ version."""

    node: str
    version: BrokerVersion


class ManagementClient:
    def __init__(self, settings: Settings):
        self.base_urls = settings.management_urls
        self.username = settings.username
        self.timeout = (min(CONNECT_TIMEOUT, settings.request_timeout), settings.request_timeout)
        self.session = _retrying_session((settings.username, settings.password.get_secret_value()))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "ManagementClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, segments: Iterable[str], what: str, params: Mapping[str, str] | None = None):
        """GET a resource as parsed JSON; `what` names it in error sentences."""
        return self._request("GET", segments, what, params=params)

    def get_each(
        self,
        segments: Iterable[str],
        what: str,
        params: Mapping[str, str] | None,
        each: Callable[[Any], T],
    ) -> list[T]:
        """GET a JSON list, `each` applied to every item as it is read. At 100,000 queues a
        listing with statistics is 44 MB of JSON: read whole, its bytes, its text and its items
        as dicts took 250 MB at once; read so, one item's dict at a time."""
        answer = self._send("GET", segments, what, params=params, stream=True)
        with answer:
            if answer.status_code >= 400:
                raise self._error(answer, what)
            try:
                return _each_item(answer.iter_content(CHUNK_BYTES), each)
            except requests.RequestException as exc:
                raise self._unreachable(self.base_url, exc, what) from None
            except _NotAList:
                raise ServerError(
                    f"Warren could not read {what}: the answer does not have the expected shape."
                ) from None
            except ValueError:
                raise self._not_json(answer, what) from None

    def post(self, segments: Iterable[str], what: str, body: Mapping[str, Any]):
        """POST a JSON body; the answer as parsed JSON. Never retried once sent."""
        return self._request("POST", segments, what, json=body)

    def put(self, segments: Iterable[str], what: str, body: Mapping[str, Any]) -> None:
        """PUT a JSON body (create or replace). Never retried once sent."""
        self._request("PUT", segments, what, json=body)

    def delete(self, segments: Iterable[str], what: str, headers: Mapping[str, str]) -> None:
        """DELETE a resource. Never retried once sent."""
        self._request("DELETE", segments, what, headers=headers)

    @property
    def base_url(self) -> str:
        """The node this client reads from: the one that answered last."""
        return self.base_urls[_answering.get(self.base_urls, 0)]

    def _request(self, method: str, segments: Iterable[str], what: str, **options):
        return self._json(self._send(method, segments, what, **options), what)

    def _send(
        self, method: str, segments: Iterable[str], what: str, **options
    ) -> requests.Response:
        """The request on the node that answered last, else on each next one in turn. A
        change moves on only if it was never sent: it must not happen twice."""
        first = _answering.get(self.base_urls, 0)
        problems = []
        for step in range(len(self.base_urls)):
            index = (first + step) % len(self.base_urls)
            url = self.base_urls[index]
            try:
                answer = self.session.request(
                    method, url + api_path(*segments), timeout=self.timeout, **options
                )
            except requests.RequestException as exc:
                problems.append(self._unreachable(url, exc, what))
                if _timed_out(exc) and method not in IDEMPOTENT:
                    break
                continue
            _answering[self.base_urls] = index
            return answer
        if len(problems) == 1:
            raise problems[0]
        raise BrokerUnreachable(
            "No node of the cluster answered: " + " ".join(str(p) for p in problems)
        )

    def _unreachable(self, url: str, exc: requests.RequestException, what: str):
        if _timed_out(exc):
            return BrokerUnreachable(
                f"The management API at {url} did not answer within "
                f"{self.timeout[1]:g} s while reading {what}."
            )
        return BrokerUnreachable(f"Cannot reach the management API at {url}: {_reason(exc)}.")

    def _json(self, answer: requests.Response, what: str) -> Any:
        if answer.status_code >= 400:
            raise self._error(answer, what)
        if answer.status_code == 204 or not answer.content:
            return None
        try:
            return answer.json()
        except ValueError:
            raise self._not_json(answer, what) from None

    def _not_json(self, answer: requests.Response, what: str) -> ServerError:
        return ServerError(
            f"The management API at {self.base_url} sent something that is not JSON "
            f"for {what} (HTTP {answer.status_code})."
        )

    def _error(self, answer: requests.Response, what: str) -> Exception:
        status, reason = answer.status_code, _broker_reason(answer)
        # The broker answers 401 both for bad credentials ("Login failed") and for a user it
        # knows but will not serve (no management tag, no access to the vhost).
        if status == 401 and reason in ("", *LOGIN_FAILED):
            return Unauthorized(
                f"The broker at {self.base_url} refused user {self.username!r}: "
                "wrong user name or password (401)."
            )
        if status in (401, 403):
            return Forbidden(
                f"User {self.username!r} may not read {what} on {self.base_url}: "
                f"{reason or 'access refused'} ({status})."
            )
        if status == 404:
            return NotFound(f"Not found on {self.base_url}: {what} (404).")
        if status == 406:
            return PreconditionFailed(
                f"The broker refused {what}: {reason or 'precondition failed'} (406)."
            )
        return ServerError(
            f"The management API at {self.base_url} failed with HTTP {status} while reading "
            f"{what}{': ' + reason if reason else ''}."
        )

    def whoami(self) -> dict:
        """The user these credentials log in as, with its tags. Any user tag; read-only."""
        return self.get(("whoami",), "the current user")

    def list_queues_in(
        self,
        vhost: str,
        columns: Iterable[str],
        statistics: bool = True,
        each: Callable[[Any], T] = _as_is,
    ) -> list[T]:
        """Queues of one vhost, only the named columns, each as `each` makes it of the queue's
        dict (as the answer is read: see `get_each`); without `statistics`, no counts nor
        rates (the broker answers several times faster). Needs `monitoring` (or vhost access)."""
        params = {"columns": ",".join(columns)} | ({} if statistics else {"disable_stats": "true"})
        return self.get_each(("queues", vhost), f"the queues of vhost {vhost!r}", params, each)

    def get_vhost(self, vhost: str) -> dict:
        """One virtual host's name. Read-only; NotFound when it does not exist."""
        return self.get(("vhosts", vhost), f"vhost {vhost!r}", {"columns": "name"})

    def list_vhosts(self) -> list[dict]:
        """The virtual hosts this user may see: those it has permissions on, or all of them
        for `administrator` and `monitoring` users. Any user tag; read-only."""
        return self.get(("vhosts",), "the virtual hosts", {"columns": "name"})

    def get_exchange(self, vhost: str, exchange: str) -> dict:
        """One exchange's definition. Read-only; NotFound when it does not exist."""
        return self.get(("exchanges", vhost, exchange), f"exchange {exchange!r} in vhost {vhost!r}")

    def set_policy(self, vhost: str, name: str, policy: Mapping[str, Any]) -> None:
        """Create or replace policy `name` (pattern, apply-to, definition, priority)."""
        self.put(("policies", vhost, name), f"policy {name!r} in vhost {vhost!r}", policy)

    def list_bindings_from(
        self, vhost: str, exchange: str, each: Callable[[Any], T] = _as_is
    ) -> list[T]:
        """Bindings whose source is `exchange`, the columns Warren reads, each as `each` makes
        it (see `get_each`). Read-only.

        A missing exchange answers an empty list, not 404 (3.10): ask `get_exchange` to tell.
        """
        return self.get_each(
            ("exchanges", vhost, exchange, "bindings", "source"),
            f"exchange {exchange!r} in vhost {vhost!r}",
            {"columns": ",".join(BINDING_COLUMNS)},
            each,
        )

    def get_queue(self, vhost: str, queue: str, params: Mapping[str, str]) -> dict:
        """One queue, with its arguments and (lengths_age/lengths_incr) count samples. Read-only."""
        return self.get(("queues", vhost, queue), f"queue {queue!r} in vhost {vhost!r}", params)

    def get_messages(self, vhost: str, queue: str, count: int, truncate: int) -> list[dict]:
        """Take up to `count` ready messages and put them back (`ack_requeue_true`).

        Needs `read` on the queue. It changes the queue: each message is marked redelivered, and
        on a quorum queue counts as a delivery toward its delivery limit. Payloads are cut to
        `truncate` bytes and sent base64-encoded, so binary survives exactly.
        """
        return self.post(
            ("queues", vhost, queue, "get"),
            f"messages of queue {queue!r} in vhost {vhost!r}",
            {
                "count": count,
                "ackmode": "ack_requeue_true",
                "encoding": "base64",
                "truncate": truncate,
            },
        )

    def cluster_name(self) -> str:
        """The cluster's name (one node is a cluster of one). Any user tag; read-only."""
        answer = self.get(("overview",), "the broker overview", {"columns": "cluster_name"})
        return str(answer.get("cluster_name", ""))

    def get_node(self, node: str, columns: Iterable[str]) -> dict:
        """One cluster node (uptime, alarms, memory). Needs `monitoring`; read-only."""
        return self.get(("nodes", node), f"node {node!r}", {"columns": ",".join(columns)})

    def list_nodes(self, columns: Iterable[str]) -> list[dict]:
        """Every node of the cluster, running or not. Needs `monitoring`; read-only."""
        return self.get(("nodes",), "the cluster's nodes", {"columns": ",".join(columns)})

    def answering(self) -> Answering:
        """The node that serves this client's requests, and its version. Any user tag; read-only."""
        columns = {"columns": "node,rabbitmq_version"}
        answer = self.get(("overview",), "the broker overview", columns)
        version = BrokerVersion.parse(str(answer.get("rabbitmq_version", "")))
        return Answering(str(answer.get("node", "")), version)

    def broker_version(self) -> BrokerVersion:
        return self.answering().version

    def close_connection(self, connection: str, reason: str) -> None:
        """Close a client connection; the broker returns its unacked messages to ready.

        Needs `administrator`, or `management` for one's own connections. Changes state: the
        client (pod) sees its connection closed with `reason` and must reconnect.
        """
        self.delete(("connections", connection), f"connection {connection!r}", {"X-Reason": reason})

    def list_consumers_in(self, vhost: str) -> list[dict]:
        """Consumers of one vhost with queue, tag, prefetch and channel. Read-only."""
        return self.get(("consumers", vhost), f"the consumers of vhost {vhost!r}")

    def list_channels_in(
        self, vhost: str, columns: Iterable[str], params: Mapping[str, str] | None = None
    ) -> list[dict]:
        """Channels of one vhost: unacked counts live here, not on consumers; `params` may ask
        for the broker's samples (`msg_rates_age`, `msg_rates_incr`). Read-only."""
        return self.get(
            ("vhosts", vhost, "channels"),
            f"the channels of vhost {vhost!r}",
            {"columns": ",".join(columns), **(params or {})},
        )

    def list_connections_in(self, vhost: str, columns: Iterable[str]) -> list[dict]:
        """Connections of one vhost, with the client-given connection name. Read-only."""
        return self.get(
            ("vhosts", vhost, "connections"),
            f"the connections of vhost {vhost!r}",
            {"columns": ",".join(columns)},
        )


@contextmanager
def naming_a_missing_vhost(client: ManagementClient, vhost: str) -> Iterator[None]:
    """A "not found" or "refused" inside becomes VhostMissing when `vhost` does not exist: the
    broker's own answer then blames the queue, exchange or connection asked for. The vhost is
    asked after such an answer only, so the happy path costs nothing and a broker that does not
    answer is never waited for twice."""
    try:
        yield
    except VhostMissing:
        raise
    except (NotFound, Forbidden):
        if _vhost_missing(client, vhost):
            raise VhostMissing(
                f"Virtual host {vhost!r} does not exist on the broker at {client.base_url}: "
                "check WARREN_VHOST (or --vhost)."
            ) from None
        raise


def _vhost_missing(client: ManagementClient, vhost: str) -> bool:
    try:
        client.get_vhost(vhost)
        return False
    except NotFound:
        return True
    except BrokerError:
        return False  # the broker cannot tell: the first failure stands


class _NotAList(ValueError):
    """JSON, but not a list."""


class _Arriving:
    """The text of an answer as its bytes arrive: what is not yet read of it, and more on
    demand. JSON is UTF-8 (RFC 8259)."""

    _DECODER = json.JSONDecoder()
    _SPACE = re.compile(r"[ \t\n\r]*")

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self._text = ""
        self._at = 0

    def _more(self) -> bool:
        """The next chunk added to what is not yet read; False at the end of the answer."""
        chunk = next(self._chunks, None)
        if chunk is None:
            self._decode(b"", final=True)  # a character cut off at the end is not JSON
            return False
        self._text = self._text[self._at :] + self._decode(chunk)
        self._at = 0
        return True

    def peek(self) -> str:
        """The next character that is not white space; "" at the end."""
        while True:
            self._at = self._SPACE.match(self._text, self._at).end()
            if self._at < len(self._text):
                return self._text[self._at]
            if not self._more():
                return ""

    def take(self) -> str:
        """The next character that is not white space, read; "" at the end."""
        char = self.peek()
        self._at += len(char)
        return char

    def item(self) -> Any:
        """The next item of a list, read. An item is only taken once what follows it has
        arrived: cut off by the end of a chunk, `12` would read as 1, `1.5` as 1."""
        self.peek()
        while True:
            try:
                item, end = self._DECODER.raw_decode(self._text, self._at)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise
            following = self._SPACE.match(self._text, end).end()
            if self._text[following : following + 1] in (",", "]") or not self._more():
                self._at = end
                return item


def _each_item(chunks: Iterator[bytes], each: Callable[[Any], T]) -> list[T]:
    """`each` of every item of the JSON list that `chunks` carry: the items are decoded one at
    a time, and `each`'s result is all that is kept of one. ValueError where it is not JSON."""
    text = _Arriving(chunks)
    if text.peek() != "[":
        text.item()
        raise _NotAList
    text.take()
    items: list[T] = []
    if text.peek() == "]":
        text.take()
    else:
        items.append(each(text.item()))
        while (separator := text.take()) == ",":
            items.append(each(text.item()))
        if separator != "]":
            raise ValueError("not a JSON list")
    if text.peek():
        raise ValueError("more after the list")
    return items


def _timed_out(exc: requests.RequestException) -> bool:
    # Once retries are spent, a read timeout arrives wrapped in a ConnectionError.
    return isinstance(exc, requests.ReadTimeout) or "Read timed out" in str(exc)


def _reason(exc: requests.RequestException) -> str:
    text = str(exc)
    for marker, sentence in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host name"),
        ("Failed to resolve", "unknown host name"),
        ("timed out", "connection timed out"),
        ("RemoteDisconnected", "the connection was closed without an answer"),
    ):
        if marker in text:
            return sentence
    return type(exc).__name__


def _broker_reason(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("error") or "")
    return ""
