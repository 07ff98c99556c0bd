"""Counts from the broker's Prometheus endpoint: the same numbers as the management API, only
from this broker, with the topology listed again when a queue appears."""

import time

from hypothesis import given
from hypothesis import strategies as st

from dashboard.broker.metrics import MetricsAnswer, QueueCounts, in_pieces, parse_metrics
from dashboard.local.rabbitmq import free_port
from dashboard.local.workload import declare_tenant
from dashboard.reads.overview import OverviewReader, fetch_overview, metric_counts
from dashboard.reads.poll import OverviewPolling
from tests.support.helpers import history_for, publish, tenant_with_messages, wait_until

SAMPLE = """# TYPE rabbitmq_detailed_queue_messages_ready gauge
rabbitmq_detailed_queue_messages_ready{vhost="/",queue="plain"} 3
rabbitmq_detailed_queue_messages_ready{vhost="/",queue="say "hi" {x} 1"} 1
rabbitmq_detailed_queue_messages_ready{vhost="other",queue="plain"} 99
rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="plain"} 2
rabbitmq_detailed_queue_messages{vhost="/",queue="plain"} 5
rabbitmq_detailed_queue_process_reductions_total{vhost="/",queue="plain"} 123456
rabbitmq_detailed_queue_consumers{vhost="/",queue="plain"} 1
rabbitmq_identity_info{rabbitmq_node="n@h",rabbitmq_cluster="c@h",rabbitmq_cluster_id="x"} 1
"""


def test_the_endpoint_text_is_read_per_queue_of_the_vhost():
    answer = parse_metrics([SAMPLE], "/")
    assert answer.cluster == "c@h"
    assert answer.counts == {
        "plain": QueueCounts(ready=3, unacked=2, total=5, consumers=1),
        'say "hi" {x} 1': QueueCounts(ready=1, unacked=0, total=0, consumers=0),
    }


# Edits of one line of SAMPLE: a new value, another queue's name, a line gone, a line added
# (another queue's: an answer lists each series once).
EDITS = st.lists(
    st.tuples(
        st.integers(0, len(SAMPLE.splitlines()) - 1),
        st.sampled_from(["value", "queue", "drop", "add"]),
        st.integers(0, 10**6),
    ),
    max_size=4,
)


def edited(text: str, edits: list[tuple[int, str, int]], mark: str) -> str:
    lines = text.splitlines()
    for step, (index, edit, number) in enumerate(edits):
        index %= len(lines)
        line = lines[index]
        if edit == "value" and not line.startswith("#"):
            lines[index] = f"{line.rpartition(' ')[0]} {number}"
        elif edit == "queue":
            lines[index] = line.replace('queue="plain"', f'queue="{mark}{step}"')
        elif edit == "drop" and len(lines) > 1:
            del lines[index]
        elif edit == "add" and 'queue="' in line:
            head, tail = line.split('queue="', 1)
            lines.insert(index, f'{head}queue="{mark}{step}"}} {tail.rpartition(" ")[2]}')
    return "\n".join(lines) + "\n"


@given(EDITS, EDITS)
def test_an_answer_read_against_the_last_says_what_a_full_read_says(before, after):
    last_text = edited(SAMPLE, before, "before-")
    text = edited(last_text, after, "after-")
    last = ([last_text], parse_metrics([last_text], "/"))

    assert parse_metrics([text], "/", last) == parse_metrics([text], "/")


def cut(text: str, at: list[int]) -> list[str]:
    """`text` as it may arrive: in chunks cut at `at`, put in pieces as the endpoint's reader
    does."""
    cuts = sorted({point % len(text) for point in at} - {0})
    return in_pieces(
        text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)
    )


CUTS = st.lists(st.integers(0, 10**4), max_size=6)


@given(EDITS, EDITS, CUTS, CUTS)
def test_an_answer_in_pieces_says_what_it_says_whole(before, after, last_cuts, cuts):
    last_text = edited(SAMPLE, before, "before-")
    text = edited(last_text, after, "after-")
    last_pieces, pieces = cut(last_text, last_cuts), cut(text, cuts)
    last = (last_pieces, parse_metrics(last_pieces, "/"))

    assert "".join(pieces) == text
    assert last[1] == parse_metrics([last_text], "/")
    assert parse_metrics(pieces, "/", last) == parse_metrics([text], "/")


def counts(overview) -> list[tuple]:
    return [(r.tenant, r.ready, r.unacked, r.consumers, r.dead_letters) for r in overview.rows]


def test_counts_from_the_endpoint_equal_the_management_api(session_for, channel, unique, pod):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 5)
    tenant_with_messages(channel, exchange, "bravo", unique("bravo"), 2)
    channel.basic_publish("", f"{queue}.dlq", b"dead", mandatory=True)
    assert pod(unique("pod")).hold(queue, prefetch=2, expect=2) == 2
    session = session_for(tenant_exchange=exchange)
    expected = [("acme", 3, 2, 1, 1), ("bravo", 2, 0, 0, 0)]
    wait_until(
        lambda: counts(fetch_overview(session)) == expected,
        what="the management API's counts to settle",
    )
    listed = fetch_overview(session)
    # As at scale: more queues in the vhost than this.
    reader = OverviewReader(session_for(tenant_exchange=exchange, statistics_up_to=0))

    first, second = reader.read(), reader.read()

    assert [view.counts_from for view in (listed, first, second)] == [
        "management", "metrics", "metrics"
    ]  # fmt: skip
    # The first page does not wait for the statistics: the second read lists them.
    assert (first.statistics_at, second.statistics_at is not None) == (None, True)
    assert (first.rows[0].acks, second.rows[0].acks) == (None, 0)
    assert counts(first) == counts(second) == counts(listed) == expected
    assert first.totals == second.totals == listed.totals


def test_the_one_shot_without_statistics_gives_the_same_counts_with_or_without_the_endpoint(
    broker, session_for, channel, unique, pod
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 4)
    channel.basic_publish("", f"{queue}.dlq", b"dead", mandatory=True)
    by_policy = declare_tenant(channel, exchange, "bravo", unique("bravo"), dead_letters=False)
    channel.queue_declare(f"{by_policy}.dead", durable=True)
    channel.basic_publish("", f"{by_policy}.dead", b"dead", mandatory=True)
    policy = unique("dlx")
    definition = f'{{"dead-letter-exchange": "", "dead-letter-routing-key": "{by_policy}.dead"}}'
    broker.ctl("set_policy", policy, f"^{by_policy}$", definition, "--apply-to", "queues")
    assert pod(unique("pod")).hold(queue, prefetch=1, expect=1) == 1
    expected = [("acme", 3, 1, 1, 1), ("bravo", 0, 0, 0, 1)]
    try:
        with_statistics = wait_until(
            lambda: (
                (view := fetch_overview(session_for(tenant_exchange=exchange)))
                and counts(view) == expected
                and view
            ),
            what="the management API's counts to settle",
        )
        from_metrics = fetch_overview(session_for(tenant_exchange=exchange), statistics=False)
        listed = fetch_overview(
            session_for(tenant_exchange=exchange, metrics_url="off"), statistics=False
        )
    finally:
        broker.ctl("clear_policy", policy)

    assert counts(from_metrics) == counts(listed) == expected
    assert [from_metrics.counts_from, listed.counts_from] == ["metrics", "management"]
    assert from_metrics.totals == listed.totals == with_statistics.totals
    assert [row.dead_letter_queue for row in from_metrics.rows] == [
        f"{queue}.dlq",
        f"{by_policy}.dead",
    ]
    assert {(row.publish_rate, row.acks) for row in listed.rows} == {(None, None)}
    assert (from_metrics.statistics_at, with_statistics.statistics_at is not None) == (None, True)


def test_a_queue_named_beyond_ascii_is_counted_under_its_own_name(session_for, channel, unique):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "café", unique("café-队列"), 3)
    session = session_for(tenant_exchange=exchange)

    def counted():
        found = metric_counts(session).get(queue)
        return found if found is not None and found.ready == 3 else None

    assert wait_until(counted, what="the endpoint to count the queue's 3 ready").consumers == 0


def test_a_new_tenant_queue_shows_on_the_next_read(session_for, channel, unique):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    reader = OverviewReader(session_for(tenant_exchange=exchange, topology_seconds=3600))
    assert [row.tenant for row in reader.read().rows] == ["acme"]

    tenant_with_messages(channel, exchange, "bravo", unique("bravo"), 0)

    wait_until(
        lambda: sorted(row.tenant for row in reader.read().rows) == ["acme", "bravo"],
        what="bravo in the overview",
    )


def test_another_brokers_endpoint_is_never_used(session_for, channel, unique, second_broker):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    reader = OverviewReader(
        session_for(tenant_exchange=exchange, metrics_url=second_broker.metrics_url)
    )
    reads = [reader.read(), reader.read()]
    assert [overview.counts_from for overview in reads] == ["management", "management"]
    assert reader.metrics is None


def test_no_endpoint_where_auto_looks_means_the_management_api(session_for, channel, unique):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    reader = OverviewReader(
        session_for(tenant_exchange=exchange, metrics_url=f"http://127.0.0.1:{free_port()}")
    )
    reads = [reader.read(), reader.read()]
    assert [overview.counts_from for overview in reads] == ["management", "management"]
    assert reader.metrics is None


def test_a_gauge_where_the_last_answer_had_another_line_is_read_in_full():
    lines = SAMPLE.splitlines()
    lines[0] = 'rabbitmq_detailed_queue_messages_ready{vhost="/",queue="new"} 7'
    text = "\n".join(lines) + "\n"

    answer = parse_metrics([text], "/", ([SAMPLE], parse_metrics([SAMPLE], "/")))

    assert answer.counts["new"] == QueueCounts(ready=7, unacked=0, total=0, consumers=0)
    assert answer == parse_metrics([text], "/")


def test_only_the_lines_that_differ_from_the_last_answer_are_read():
    # The last answer's counts, as remembered, say what its unchanged lines said: a full read of
    # the new text would replace the made-up counts of "plain".
    remembered = {
        "plain": QueueCounts(ready=9, unacked=9, total=9, consumers=9),
        'say "hi" {x} 1': QueueCounts(ready=1, unacked=0, total=0, consumers=0),
    }
    text = SAMPLE.replace('queue="say "hi" {x} 1"} 1', 'queue="say "hi" {x} 1"} 4')

    answer = parse_metrics([text], "/", ([SAMPLE], MetricsAnswer("c@h", remembered)))
    in_pieces_too = parse_metrics(cut(text, [90, 300]), "/", (cut(SAMPLE, [200]), answer))

    assert answer.counts == remembered | {'say "hi" {x} 1': QueueCounts(4, 0, 0, 0)}
    assert in_pieces_too == answer


def test_a_poll_builds_again_only_the_rows_whose_counts_changed(
    session_for, channel, unique, tmp_path
):
    """A poll over the same topology reuses the rows whose counts stood still (at 100,000 queues
    most of them): a row whose counts changed is built again, with its flags; a reused row's
    wait still moves with the clock."""
    exchange = unique("tenants")
    session = session_for(tenant_exchange=exchange, topology_seconds=3600)
    polling = OverviewPolling(session, history_for(session, tmp_path))
    tenant_with_messages(channel, exchange, "still", unique("still"), 2)
    tenant_with_messages(channel, exchange, "moving", unique("moving"), 1)

    def rows_where(ready: dict[str, int]) -> dict:
        rows = {row.tenant: row for row in polling.read().rows}
        return rows if {tenant: rows[tenant].ready for tenant in ready} == ready and rows else None

    first = wait_until(lambda: rows_where({"still": 2, "moving": 1}), what="both counted")
    waited = first["still"].wait.seconds
    time.sleep(1)
    second = rows_where({"still": 2, "moving": 1})
    assert (second["still"], second["moving"]) == (first["still"], first["moving"])
    assert second["still"] is first["still"] and second["moving"] is first["moving"]
    assert second["still"].wait.seconds >= waited + 1

    publish(channel, exchange, "moving", 1)
    third = wait_until(lambda: rows_where({"moving": 2}), what="moving's second message")
    assert third["still"] is first["still"] and third["moving"] is not first["moving"]
    assert [flag.reason for flag in third["moving"].flags] == ["2 ready and no consumer."]
    assert [flag.reason for flag in third["still"].flags] == ["2 ready and no consumer."]
