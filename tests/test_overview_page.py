"""The console's overview page, run by Streamlit's AppTest against the real broker."""

import re
import time

import pika
from streamlit.testing.v1 import AppTest

from dashboard.local.rabbitmq import free_port
from dashboard.reads.overview import fetch_overview
from pages.components.formatting import literal
from tests.support.helpers import tenant_with_messages, wait_until
from tests.support.tcpproxy import TcpProxy


def settled(session_for, exchange: str, ready: int, consumers: int = 0) -> None:
    """Wait until the management API's lagging stats show `ready` messages and `consumers`
    consumers in total (a consumer's count can arrive a stats emission after the messages')."""
    session = session_for(tenant_exchange=exchange)
    wait_until(
        lambda: (lambda totals: (totals.ready, totals.consumers) == (ready, consumers))(
            fetch_overview(session).totals
        ),
        what=f"{ready} ready messages and {consumers} consumers",
    )


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_overview_shows_headline_and_tenants_most_ready_first(
    session_for, channel, unique, console, pod
):
    exchange = unique("tenants")
    busy = tenant_with_messages(channel, exchange, "busy", unique("busy"), 1500)
    calm = tenant_with_messages(channel, exchange, "calm", unique("calm"), 4)
    assert pod("pod-page").hold(calm, prefetch=2, expect=2) == 2
    settled(session_for, exchange, 1500 + 2, consumers=1)

    app = console(WARREN_TENANT_EXCHANGE=exchange)

    assert not app.exception
    assert metrics(app) == {"Tenants": "2", "Ready": "1,502", "Unacked": "2", "Consumers": "1"}
    table = app.dataframe[0].value
    assert table[["tenant", "queue", "ready", "unacked", "consumers"]].values.tolist() == [
        ["busy", busy, 1500, 0, 0],
        ["calm", calm, 2, 2, 1],
    ]


def test_the_table_leads_with_what_matters_at_3_am_and_leaves_unknowns_empty(
    session_for, channel, unique, console, pod
):
    exchange = unique("tenants")
    served = tenant_with_messages(channel, exchange, "served", unique("served"), 3)
    tenant_with_messages(channel, exchange, "waiting", unique("waiting"), 5)
    assert pod("pod-fits").hold(served, prefetch=1, expect=1) == 1
    settled(session_for, exchange, 2 + 5, consumers=1)

    app = console(WARREN_TENANT_EXCHANGE=exchange)

    assert not app.exception
    [frame] = app.dataframe
    assert list(frame.value.columns[:10]) == [
        "tenant", "flags", "ready", "unacked", "consumers", "dead_letters", "waiting", "drain",
        "trend", "growth",
    ]  # fmt: skip
    assert frame.value.set_index("tenant").loc["waiting", "drain"] == "never: no consumer"
    # Streamlit writes "None" for a value not known unless told otherwise.
    assert frame.proto.placeholder == ""
    capacities = frame.value["consumer_capacity"].dropna().tolist()
    # A whole percent (the broker's 0.5 is 50, not 50.0% or 0.5).
    assert capacities and all(float(capacity).is_integer() for capacity in capacities)
    assert frame.value.set_index("tenant").loc["waiting", "flags"] == "no-consumer"


def test_filter_from_the_deep_link(session_for, channel, unique, console):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme-eu", unique("a"), 1)
    tenant_with_messages(channel, exchange, "acme-us", unique("b"), 2)
    tenant_with_messages(channel, exchange, "globex", unique("c"), 3)
    settled(session_for, exchange, 6)

    app = console({"q": "ACME"}, WARREN_TENANT_EXCHANGE=exchange)

    assert app.text_input[0].value == "ACME"
    assert app.dataframe[0].value["tenant"].tolist() == ["acme-us", "acme-eu"]
    app.text_input[0].set_value("nothing-like-it").run()
    assert [info.value for info in app.info] == [
        "No tenant or queue matches the filter. Clear it to see all tenants."
    ]
    assert app.query_params["q"] == "nothing-like-it"


def test_stale_banner_keeps_last_data_and_clears_when_broker_returns(
    broker, session_for, channel, unique, console
):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 7)
    settled(session_for, exchange, 7)
    proxy = TcpProxy(broker.management_port)
    try:
        # Counts from the management API only: the proxy cuts that one.
        app = console(
            WARREN_MANAGEMENT_URL=proxy.url, WARREN_TENANT_EXCHANGE=exchange,
            WARREN_METRICS_URL="off",
        )  # fmt: skip
        assert not app.error
        assert metrics(app)["Ready"] == "7"

        proxy.cut()
        wait_until(lambda: app.run().error, what="the stale banner")
        banner = app.error[0].value
        assert banner.startswith("**The broker has not answered since ")
        assert "Showing the last good data, from " in banner
        assert metrics(app)["Ready"] == "7"
        assert not app.exception

        proxy.restore()
        wait_until(lambda: not app.run().error, what="the banner to clear")
        assert metrics(app)["Ready"] == "7"
    finally:
        proxy.close()


def test_missing_exchange_is_a_warning_not_an_outage(unique, console):
    hostile = unique("[click](http://evil.example) *x* :red[y] $z$ <b>b</b>\r\n# h")
    app = console(WARREN_TENANT_EXCHANGE=hostile)
    assert not app.exception
    assert not app.error
    assert [warning.value for warning in app.warning] == [
        literal(
            f"The tenant exchange {hostile!r} does not exist in vhost '/', so there are no "
            "tenant queues to show: check WARREN_TENANT_EXCHANGE and WARREN_VHOST."
        )
    ]


def test_literal_leaves_no_markdown_or_line_break_unescaped():
    shown = literal("a\r\n# b [l](u) *e* _i_ `c` :red[r] $m$ <s> | ~ \\ !")
    assert "\r" not in shown and "\n" not in shown
    unescaped = re.findall(r"(?<!\\)[#\[\]()*_`:$<>|~!]", shown)
    assert unescaped == []


def test_bad_setting_is_one_line_on_the_page(console):
    app = console(WARREN_REFRESH_SECONDS="soon")
    assert not app.exception
    assert [error.value for error in app.error] == [
        literal(
            "Invalid setting WARREN_REFRESH_SECONDS: Input should be a valid number, unable to "
            "parse string as a number."
        )
    ]


def test_broker_never_reached_shows_banner_without_data(console):
    app = console(WARREN_MANAGEMENT_URL=f"http://127.0.0.1:{free_port()}")
    assert not app.exception
    assert "No data has been read yet." in app.error[0].value
    assert not app.metric


def test_many_flagged_tenants_make_25_links_and_the_table_keeps_the_top_rows(
    session_for, channel, unique, console
):
    exchange = unique("tenants")
    for number in range(30):
        tenant_with_messages(channel, exchange, f"t{number:02d}", unique(f"q{number:02d}"), 1)
    settled(session_for, exchange, 30)

    app = console(WARREN_TENANT_EXCHANGE=exchange)
    app.get("button_group")[0].set_value("top 100").run()

    assert not app.exception
    assert len(app.get("page_link")) == 25
    assert any("The 25 most urgent of 30;" in caption.value for caption in app.caption)
    assert len(app.dataframe[0].value) == 30


def test_the_table_can_put_the_longest_waiting_work_first(session_for, channel, unique, console):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "many", unique("many"), 5)
    old = tenant_with_messages(channel, exchange, "old", unique("old"), 0)
    channel.basic_publish("", old, b"job", pika.BasicProperties(timestamp=int(time.time()) - 900))
    settled(session_for, exchange, 6)
    # 4.0 lists a queue's head timestamp a stats emission after its counts.
    session = session_for(tenant_exchange=exchange)
    wait_until(
        lambda: any(row.head_timestamp for row in fetch_overview(session).rows),
        what="the broker to list the oldest message's timestamp",
    )
    app = console(WARREN_TENANT_EXCHANGE=exchange)
    assert list(app.dataframe[0].value["tenant"]) == ["many", "old"]

    app.segmented_control(key="rows-order").set_value("longest wait").run()

    assert not app.exception
    [frame] = app.dataframe
    assert list(frame.value["tenant"]) == ["old", "many"]
    assert 15 <= frame.value.set_index("tenant").loc["old", "waiting"] < 16  # minutes
    assert "longest wait first" in " ".join(caption.value for caption in app.caption)
