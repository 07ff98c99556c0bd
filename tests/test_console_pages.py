"""The consumers and tenant pages, run by Streamlit's AppTest against the real broker."""

import signal
import subprocess
import time

import pika
import streamlit as st

from dashboard.actions.audit import AuditLog
from dashboard.reads.consumers import SETTLING_SECONDS, fetch_consumers
from dashboard.reads.overview import fetch_overview
from pages.components.blocks import table_of
from pages.components.formatting import literal
from tests.support.helpers import (
    DASHBOARD,
    cli_environment,
    fill,
    message_labels,
    queue_counts,
    ready_count,
    tenant_with_messages,
    wait_until,
)


def settled(session_for, exchange: str, condition) -> None:
    session = session_for(tenant_exchange=exchange, stuck_after_seconds=1700)
    wait_until(
        lambda: condition(fetch_overview(session), fetch_consumers(session).loads),
        what="the broker stats to settle",
    )


def test_consumers_page_groups_by_pod_and_flags(session_for, channel, unique, pod, console):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 6)
    connected = time.monotonic()
    worker = pod(unique("pod"))
    worker.consume(queue, prefetch=2, expect=2, tag="bounded")
    worker.consume(queue, prefetch=0, expect=4, tag="unbounded")
    settled(
        session_for,
        exchange,
        lambda _, loads: sorted(load.unacked for load in loads if load.queue == queue) == [2, 4],
    )
    # Its prefetch 0 is a pod's own choice only once it had time to set another.
    time.sleep(max(0.0, connected + SETTLING_SECONDS + 1 - time.monotonic()))

    app = console({"q": queue}, page="pages/consumers.py", WARREN_TENANT_EXCHANGE=exchange)

    assert not app.exception
    assert {m.label: m.value for m in app.metric} == {
        "Pods": "1",
        "Consumers": "2",
        "Unacked": "6",
        "Flagged": "1",
    }
    pods, consumers = (frame.value for frame in app.dataframe)
    assert pods[["consumers", "unacked", "prefetch", "flags"]].values.tolist() == [
        [2, 6, 2, "unlimited-prefetch"]
    ]
    assert sorted(consumers[["consumer_tag", "prefetch", "unacked", "flags"]].values.tolist()) == [
        ["bounded", 2, 2, ""],
        ["unbounded", 0, 4, "unlimited-prefetch"],
    ]
    [link] = app.get("page_link")
    assert "Prefetch 0 \\(unlimited\\)" in link.proto.label


def test_a_stuck_pod_is_freed_from_the_consumers_page(
    session_for, settings_for, channel, unique, pod, console, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 5)
    name = unique("pod-hung")
    assert pod(name).hold(queue, prefetch=3, expect=3) == 3
    audit = tmp_path / "audit.sqlite"
    wait_until(
        lambda: [
            load.flags
            for load in fetch_consumers(session_for(stuck_after_seconds=1)).loads
            if load.queue == queue and load.unacked == 3
        ],
        what="the pod to hold 3",
    )
    time.sleep(1)

    app = console(
        {"q": queue},
        page="pages/consumers.py",
        WARREN_TENANT_EXCHANGE=exchange,
        WARREN_AUDIT_DB=str(audit),
        WARREN_STUCK_AFTER_SECONDS="1",
    )
    button = next(b for b in app.button if b.label.startswith("Return"))
    assert button.label.replace("\\", "") == f"Return {name}'s 3 unacked messages"
    button.click().run()
    sentence = app.markdown[-1].value.replace("\\", "")
    assert sentence.startswith(f"Requeue closes connection '{name}' (no ack for ")
    assert "returns the 3 messages it holds unacked" in sentence
    assert next(b for b in app.button if b.label == "Requeue").disabled
    next(box for box in app.text_input if box.label.startswith("Type")).set_value(name).run()
    next(b for b in app.button if b.label == "Requeue").click().run()

    assert not app.exception
    assert app.success[0].value.replace("\\", "") == (
        f"Closed {name}: 3 messages went back to ready; {queue} holds 5 ready now."
    )
    assert queue_counts(settings_for(), queue) == (5, 0)
    # Polled after the close: the pod is gone from the page, not shown from the poll before.
    assert [b.label for b in app.button if b.label.startswith("Return")] == []
    assert all(name not in frame.value.to_string() for frame in app.dataframe)
    [record] = AuditLog(audit).records()
    assert (record.actor, record.action, record.target, record.outcome, record.counts) == (
        "guest (console)", "requeue-connection", name, "ok",
        {"unacked_returned": 3, f"ready:{queue}": 5},
    )  # fmt: skip


def test_tenant_page_deep_link_settings_consumers_and_peek(
    session_for, channel, unique, pod, console
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    channel.basic_publish(
        exchange,
        "acme",
        b"<script>alert(1)</script> **not bold**",
        pika.BasicProperties(priority=7, headers={"trace": "t-9"}),
        mandatory=True,
    )
    channel.basic_publish(exchange, "acme", b"\x00\x01binary", mandatory=True)
    worker = pod(unique("pod"))
    assert worker.hold(queue, prefetch=1, expect=1) == 1
    worker.reject_all(queue)
    worker.close()  # it would take the next message: the binary one stays ready instead
    settled(
        session_for,
        exchange,
        lambda view, _: [(r.ready, r.unacked, r.dead_letters) for r in view.rows] == [(1, 0, 1)],
    )

    app = console({"tenant": "acme"}, page="pages/tenant.py", WARREN_TENANT_EXCHANGE=exchange)

    assert not app.exception
    assert app.title[0].value == "Tenant acme"
    assert {m.label: m.value for m in app.metric} == {
        "Ready": "1",
        "Unacked": "0",
        "Consumers": "0",
        "Dead letters": "1",
    }
    settings_table = dict(app.dataframe[0].value.values.tolist())
    assert settings_table["Max priority"] == "10"
    assert settings_table["Dead-letter exchange"] == f"{exchange}.dlx"
    assert settings_table["Consumer timeout"].startswith("30 min 0 s (the broker's default for ")
    captions = [caption.value.replace("\\", "") for caption in app.caption]
    assert f"Dead letters go to queue {queue}.dlq (1 message)." in captions

    [chart] = app.get("plotly_chart")
    assert '"name":"Unacked"' in chart.proto.spec.replace(" ", "")

    # Both queues are classic: the quorum confirmation is not offered.
    assert [box.label for box in app.checkbox] == []
    app.radio[0].set_value(f"{queue}.dlq")
    next(button for button in app.button if button.label == "Peek").click().run()
    assert not app.exception
    [payload] = [code.value for code in app.code]
    assert payload == "<script>alert(1)</script> **not bold**"
    assert message_labels(app) == ["#1 · 38 bytes · text · died 1x"]
    frames = [frame.value for frame in app.dataframe]
    [deaths] = [frame for frame in frames if "reason" in frame.columns]
    properties, headers = [frame for frame in frames if list(frame.columns) == ["name", "value"]]
    assert deaths["reason"].tolist() == ["rejected"]
    assert ["priority", "7"] in properties.values.tolist()
    assert ["trace", "t-9"] in headers.values.tolist()
    assert {"Dead-lettered (x-death):", "Properties:", "Headers:"} <= {
        caption.value for caption in app.caption
    }

    app.radio[0].set_value(queue)
    next(button for button in app.button if button.label == "Peek").click().run()
    [payload] = [code.value for code in app.code]
    assert payload.startswith("00000000  00 01 62 69 6e 61 72 79")
    assert {"Properties: none.", "Headers: none."} <= {caption.value for caption in app.caption}


def test_unknown_tenant_says_so(unique, channel, console):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    app = console({"tenant": "nobody"}, page="pages/tenant.py", WARREN_TENANT_EXCHANGE=exchange)
    assert not app.exception
    assert "No queue is bound to exchange" in app.warning[0].value


def test_tenant_page_keeps_hostile_queue_names_as_text(channel, unique, console):
    exchange = unique("tenants")
    queue = tenant_with_messages(
        channel, exchange, "acme", unique("[x](http://evil) *q* :red[r]"), 1
    )

    app = console({"tenant": "acme"}, page="pages/tenant.py", WARREN_TENANT_EXCHANGE=exchange)

    assert not app.exception
    assert app.header[0].value == literal(queue)
    assert app.radio[0].options == [literal(queue), literal(f"{queue}.dlq")]


def acme_page(console, exchange: str, audit):
    """The tenant page of tenant `acme`, its actions audited in `audit`."""
    return console(
        {"tenant": "acme"},
        page="pages/tenant.py",
        WARREN_TENANT_EXCHANGE=exchange,
        WARREN_AUDIT_DB=str(audit),
    )


def test_purge_from_the_tenant_page_asks_for_the_name_and_is_audited(
    settings_for, channel, unique, console, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 6)
    audit = tmp_path / "audit.sqlite"
    app = acme_page(console, exchange, audit)

    app.button(key=f"purge-{queue}").click().run()
    assert app.markdown[-1].value == literal(
        f"Purge deletes the 6 ready messages of {queue!r} for good."
    )
    go = app.button(key=f"purge-go-{queue}")
    assert go.disabled
    app.text_input(key=f"purge-confirm-{queue}").set_value(queue).run()
    app.button(key=f"purge-go-{queue}").click().run()

    assert not app.exception
    assert app.success[0].value == f"Purged 6 ready messages of {literal(queue)}."
    assert queue_counts(settings_for(), queue) == (0, 0)
    # The headline is read after the purge, not from the poll before it.
    assert {m.label: m.value for m in app.metric}["Ready"] == "0"
    [record] = AuditLog(audit).records()
    assert (record.actor, record.action, record.target, record.counts) == (
        "guest (console)",
        "purge",
        queue,
        {"purged": 6},
    )

    audit_page = console(page="pages/audit.py", WARREN_AUDIT_DB=str(audit))
    assert audit_page.dataframe[0].value[["action", "target", "outcome"]].values.tolist() == [
        ["purge", queue, "ok"]
    ]


def test_requeue_from_the_tenant_page_runs_as_a_job_with_progress(
    settings_for, session_for, channel, unique, pod, console, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 4)
    worker = pod(unique("pod"))
    assert worker.hold(queue, prefetch=4, expect=4) == 4
    worker.reject_all(queue)
    worker.close()
    settled(session_for, exchange, lambda view, _: view.rows[0].dead_letters == 4)
    audit = tmp_path / "audit.sqlite"
    app = acme_page(console, exchange, audit)

    # The button's count is the one its dialog acts on.
    assert app.button(key=f"requeue-{queue}").label == "Requeue 4 dead letters"
    app.button(key=f"requeue-{queue}").click().run()
    assert "Requeue moves up to 4 of the 4 ready messages" in app.markdown[-1].value.replace(
        "\\", ""
    )
    app.button(key=f"requeue-go-{queue}").click().run()
    wait_until(
        lambda: app.run().success and app.success[0].value,
        what="the job to finish",
    )

    assert app.success[0].value == "Requeued 4 dead letters; 0 stayed in the dead-letter queue."
    assert queue_counts(settings_for(), queue) == (4, 0)
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Ready"], metrics["Dead letters"]) == ("4", "0")
    assert queue_counts(settings_for(), f"{queue}.dlq") == (0, 0)
    [record] = AuditLog(audit).records()
    assert (record.actor, record.action, record.outcome) == ("guest (console)", "requeue", "ok")


def test_republish_in_place_from_the_tenant_page(settings_for, channel, unique, console, tmp_path):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 5)
    audit = tmp_path / "audit.sqlite"
    app = acme_page(console, exchange, audit)

    app.button(key=f"republish-{queue}").click().run()
    app.number_input(key=f"republish-priority-{queue}").set_value(7).run()
    assert "Republish copies up to 5 of the 5 ready messages" in app.markdown[-1].value.replace(
        "\\", ""
    )
    app.button(key=f"republish-go-{queue}").click().run()
    wait_until(lambda: app.run().success and app.success[0].value, what="the job to finish")

    assert not app.exception
    assert (
        app.success[0].value.replace("\\", "")
        == f"Republished 5 messages. '{queue}' holds 5 ready now."
    )
    moved = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        moved.append(got[1].priority)
    assert moved == [7] * 5
    [record] = AuditLog(audit).records()
    assert (record.action, record.target, record.counts) == (
        "republish",
        queue,
        {"moved": 5, "failed": 0, f"ready:{queue}": 5},
    )


def test_onboarding_page_binds_a_pasted_list_with_a_result_per_row(
    settings_for, unique, console, tmp_path
):
    exchange, good = unique("tenants"), unique("acme")
    audit = tmp_path / "audit.sqlite"
    app = console(
        page="pages/onboarding.py", WARREN_TENANT_EXCHANGE=exchange, WARREN_AUDIT_DB=str(audit)
    )

    app.text_area(key="bind-ids").set_value(f"tenant\n{good}\nnot valid!\n{good}\n").run()
    app.button(key="bind-tenants").click().run()
    app.button(key="bind-go").click().run()

    assert not app.exception
    assert app.warning[0].value == "1 of 2 tenants bound; 1 failed (see the error column)."
    results = app.dataframe[0].value
    assert results[["tenant", "outcome"]].values.tolist() == [
        [good, "created"],
        ["not valid!", "failed"],
    ]
    assert "is not a valid tenant id" in results["error"][1]
    assert queue_counts(settings_for(), f"tenant.{good}") == (0, 0)
    assert [(r.action, r.target, r.outcome) for r in AuditLog(audit).records()] == [
        ("bind", "not valid!", "failed"),
        ("bind", good, "created"),
    ]


def test_offboarding_page_asks_for_the_tenant_id(session_for, channel, unique, console):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    app = console(page="pages/onboarding.py", WARREN_TENANT_EXCHANGE=exchange)

    app.main.selectbox[0].set_value("acme").run()
    app.checkbox[1].check().run()
    app.button(key="unbind-acme").click().run()
    assert app.button(key="unbind-go").disabled
    app.text_input(key="unbind-confirm").set_value("acme").run()
    app.button(key="unbind-go").click().run()

    assert not app.exception
    assert app.success[0].value == literal(
        f"Unbound acme from {queue}. Deleted {queue} (0 messages dropped)."
    )
    assert fetch_overview(session_for(tenant_exchange=exchange)).rows == []


def test_a_number_column_without_any_value_shows_empty_cells_not_none():
    columns = {
        "tenant": st.column_config.TextColumn("Tenant"),
        "publish_rate": st.column_config.NumberColumn("Publish/s"),
    }

    table = table_of([{"tenant": "acme", "publish_rate": None}], columns)

    assert table["publish_rate"].dtype == "float64"
    assert table["publish_rate"].isna().all()
    assert table["tenant"].tolist() == ["acme"]


def test_a_move_whose_process_died_shows_as_interrupted_on_the_tenant_page(
    broker, settings_for, channel, unique, console, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    dlq = f"{queue}.dlq"
    fill(channel, dlq, 2000)
    audit = tmp_path / "audit.sqlite"
    command = ["requeue", "--from", dlq, "--to", queue, "--rate", "100", "--yes"]
    killed = subprocess.Popen(
        [*DASHBOARD, *command], env=cli_environment(broker, audit), stderr=subprocess.DEVNULL
    )
    # Past its first progress reports (every 2 s) into the audit record.
    wait_until(lambda: ready_count(settings_for(), queue) >= 300, what="300 moved")
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    app = acme_page(console, exchange, audit)

    assert not app.exception
    [warning] = [w.value.replace("\\", "") for w in app.warning if "did not finish" in w.value]
    assert warning.startswith(f"The requeue of {dlq} started at ")
    assert f"did not finish. The process running it (pid {killed.pid}) ended before" in warning
    assert "Counts then: moved " in warning
    [record] = AuditLog(audit).records()
    assert record.outcome == "interrupted"
