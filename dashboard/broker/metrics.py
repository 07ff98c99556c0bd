"""Queue counts from the broker's own Prometheus endpoint (the `rabbitmq_prometheus` plugin).

At thousands of queues this is the fastest source the broker offers: measured here at 10,000
queues, `/metrics/detailed` answers in a fraction of a second where `GET /api/queues` takes
seconds. Its gauges come from the same per-queue metrics as the management API's counts, so
the numbers are the same. It has counts only: names of queues, bindings, arguments and rates
still come from the management API, less often (see `dashboard/reads/overview.py`).
"""

from collections.abc import Iterable
from itertools import chain, compress, count, islice
from operator import ne
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import requests

from dashboard.errors import BrokerUnreachable, ServerError
from dashboard.settings import Settings

PLUGIN_PORT = 15692
FAMILIES = ("queue_coarse_metrics", "queue_consumer_count")
PREFIX = "rabbitmq_detailed_queue_"
IDENTITY = "rabbitmq_identity_info{"
FIELDS = {"messages_ready": 0, "messages_unacked": 1, "messages": 2, "consumers": 3}
# How much of an answer is read at a time.
CHUNK_BYTES = 1 << 20


class QueueCounts(NamedTuple):
    ready: int
    unacked: int
    total: int
    consumers: int


class MetricsAnswer(NamedTuple):
    # The cluster that answered (every answer names it): the endpoint must be the broker's own.
    cluster: str | None
    counts: dict[str, QueueCounts]


def metrics_url(settings: Settings) -> str | None:
    """WARREN_METRICS_URL; `auto`: the plugin's default port on the management API's host, for
    one node only (a node's endpoint lists only the queues it hosts, not the cluster's)."""
    if settings.metrics_url == "off":
        return None
    if settings.metrics_url == "auto" and len(settings.management_urls) > 1:
        return None
    if settings.metrics_url != "auto":
        return settings.metrics_url
    parts = urlsplit(settings.management_url)
    return urlunsplit((parts.scheme, f"{parts.hostname}:{PLUGIN_PORT}", "", "", ""))


class QueueMetrics:
    def __init__(self, url: str, timeout: float):
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()
        # Measured at 10,000 queues: the broker answers a fifth faster when it need not gzip its
        # 4 MB; on the network next to a broker the bytes cost less than its CPU.
        self.session.headers["Accept-Encoding"] = "identity"
        # Per vhost, the last answer's text and what it said: the next answer is read line by
        # line against it, and only the lines that differ are parsed.
        self._last: dict[str, tuple[list[str], MetricsAnswer]] = {}

    def read(self, vhost: str) -> MetricsAnswer:
        """Every queue of `vhost` that the endpoint lists, by name."""
        text = self._text(vhost)
        parsed = parse_metrics(text, vhost, self._last.get(vhost))
        self._last[vhost] = (text, parsed)
        return parsed

    def _text(self, vhost: str) -> list[str]:
        """The endpoint's answer for `vhost`, in pieces (`in_pieces`), as it arrives: read whole,
        its bytes and its text took twice its size at once (77 MB at 100,000 queues)."""
        try:
            with self.session.get(
                f"{self.url}/metrics/detailed",
                params=[("vhost", vhost), *(("family", family) for family in FAMILIES)],
                timeout=(3, self.timeout),
                stream=True,
            ) as answer:
                if answer.status_code != 200:
                    raise ServerError(
                        f"The broker's metrics endpoint at {self.url} answered "
                        f"{answer.status_code}."
                    )
                # The exposition format is UTF-8, whatever requests guesses for text/plain
                # without a charset (ISO-8859-1): a queue named beyond ASCII keeps its name.
                answer.encoding = "utf-8"
                return in_pieces(answer.iter_content(CHUNK_BYTES, decode_unicode=True))
        except requests.RequestException as exc:
            raise BrokerUnreachable(
                f"The broker's metrics endpoint at {self.url} does not answer "
                f"({type(exc).__name__})."
            ) from None

    def forget(self) -> None:
        """Let the last answers go (a poll nobody reads: tens of MB at 100,000 queues)."""
        self._last.clear()


def in_pieces(chunks: Iterable[str]) -> list[str]:
    """The text of `chunks` in pieces that end with a line feed (the last may not), so that
    each piece's lines are the text's lines, in parts."""
    pieces, rest = [], ""
    for chunk in chunks:
        text = rest + chunk
        cut = text.rfind("\n") + 1
        if cut:
            pieces.append(text[:cut])
        rest = text[cut:]
    if rest:
        pieces.append(rest)
    return pieces


def parse_metrics(
    pieces: list[str],
    vhost: str,
    last: tuple[list[str], MetricsAnswer] | None = None,
) -> MetricsAnswer:
    """The cluster's name and the four gauges per queue of `vhost`, from the text format in
    line-ended pieces (`in_pieces`); with `last` (an earlier answer's pieces and what it said), only
    the lines that differ from it are parsed, where it lists the same queues in the same order,
    as the plugin does from one poll to the next while no queue comes or goes.

    Hand-parsed: a general parser takes seconds at 10,000 queues, this takes tens of
    milliseconds (and a poll at 100,000 whose counts mostly stand, a tenth of a full read).
    Label values are taken as they come: RabbitMQ 3.10 does not escape quotes or backslashes in
    them, so a name is read up to the last `"}` of its line.
    The text is split into lines a piece at a time, never whole: at 100,000 queues it has
    500,000 lines, and as one list of lines each, an answer and the last took 130 MB at once.
    """
    vhost_label = f'{{vhost="{vhost}",queue="'
    if last is not None:
        edited = _changed(pieces, last[0], vhost_label, last[1])
        if edited is not None:
            return edited
    values: dict[str, list[int]] = {}
    cluster = None
    for line in chain.from_iterable(map(str.splitlines, pieces)):
        if line.startswith(IDENTITY):
            cluster = _label(line, "rabbitmq_cluster")
        elif gauge := _gauge(line, vhost_label):
            values.setdefault(gauge[0], [0, 0, 0, 0])[gauge[1]] = gauge[2]
    return MetricsAnswer(cluster, {queue: QueueCounts(*c) for queue, c in values.items()})


def _changed(
    pieces: list[str], last_pieces: list[str], vhost_label: str, last: MetricsAnswer
) -> MetricsAnswer | None:
    """`last` with the gauges of the lines that differ from the last answer's at the same
    place; None where they cannot say it alone: another number of lines, a line that holds
    another queue's gauge (or another gauge) than before, or a changed identity line. (An
    answer lists each series once, as the exposition format requires.)"""
    counts = dict(last.counts)
    last_lines = chain.from_iterable(map(str.splitlines, last_pieces))
    for piece in pieces:
        lines = piece.splitlines()
        before_lines = list(islice(last_lines, len(lines)))
        if len(before_lines) != len(lines):
            return None
        for index in compress(count(), map(ne, lines, before_lines)):
            line, before_line = lines[index], before_lines[index]
            gauge, before = _gauge(line, vhost_label), _gauge(before_line, vhost_label)
            identity = line.startswith(IDENTITY) or before_line.startswith(IDENTITY)
            if identity or (gauge and before and gauge[:2] != before[:2]):
                return None
            if gauge and before:
                queue, field, value = gauge
                counts[queue] = counts[queue]._replace(**{QueueCounts._fields[field]: value})
            elif gauge or before:
                return None
    if next(last_lines, None) is not None:
        return None
    return MetricsAnswer(last.cluster, counts)


def _gauge(line: str, vhost_label: str) -> tuple[str, int, int] | None:
    """(queue, field, value) of a line with one of the four gauges of a queue of the vhost."""
    if not line.startswith(PREFIX):
        return None
    brace = line.find("{")
    field = FIELDS.get(line[len(PREFIX) : brace])
    end = line.rfind('"} ')
    if field is None or end < 0 or not line.startswith(vhost_label, brace):
        return None
    return line[brace + len(vhost_label) : end], field, int(float(line[end + 3 :]))


def _label(line: str, name: str) -> str | None:
    start = line.find(f'{name}="')
    if start < 0:
        return None
    start += len(name) + 2
    return line[start : line.find('"', start)]
