"""`warren watch`: the console's findings as Prometheus metrics, the shipped rules, and alerts
reaching a receiver through a real Prometheus and Alertmanager, or straight from the watcher."""

import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
import requests

from dashboard.local.demo import stop_console as stop
from dashboard.watch.findings import KINDS, alert_name
from tests.support.helpers import cli_environment, publish, tenant_with_messages, wait_until
from tests.support.tcpproxy import TcpProxy
from tests.support.watching import (
    RULES,
    AlertReceiver,
    WatchProcess,
    start_alertmanager,
    start_prometheus,
)

CONSOLE = "http://warren.example:8501"


@pytest.fixture
def watcher_for(broker, tmp_path) -> Iterator[Callable[..., WatchProcess]]:
    """Starts `warren watch` on the test broker with the settings given; stops them all."""
    started: list[WatchProcess] = []

    def start(*args: str, **env: str) -> WatchProcess:
        environment = cli_environment(broker) | {
            "WARREN_REFRESH_SECONDS": "1",
            "WARREN_HISTORY_DB": str(tmp_path / "history.sqlite"),
            "WARREN_CONSOLE_URL": CONSOLE,
        }
        watch = WatchProcess(environment | env, tmp_path, *args)
        started.append(watch)
        return watch

    yield start
    for watch in started:
        watch.stop()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    receiving = AlertReceiver()
    yield receiving
    receiving.close()


def test_a_tenant_s_counts_and_flag_are_served_and_the_flag_goes_when_it_clears(
    channel, unique, pod, watcher_for
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    watch = watcher_for(WARREN_TENANT_EXCHANGE=exchange)
    labels = {"vhost": "/", "tenant": "acme", "queue": queue}

    wait_until(lambda: watch.value("warren_tenant_ready_messages", **labels) == 3)
    assert watch.value("warren_tenant_flag", **labels, kind="no-consumer") == 1
    [reason] = watch.series("warren_tenant_flag_reason", **labels, kind="no-consumer")
    assert reason.labels["reason"] == "3 ready and no consumer."
    assert reason.labels["link"] == f"{CONSOLE}/tenant?tenant=acme"
    assert watch.value("warren_tenant_dead_letter_messages", **labels) == 0
    # Waiting since the watcher first saw the backlog (its history is new); never drained.
    assert 0 <= watch.value("warren_tenant_wait_seconds", **labels) < 60
    assert watch.series("warren_tenant_drain_seconds", **labels) == []
    assert watch.value("warren_broker_up") == 1
    assert watch.value("warren_last_success_timestamp_seconds") > time.time() - 30
    assert requests.get(f"{watch.url}/healthz", timeout=5).status_code == 200

    pod(unique("pod")).hold(queue, 3, 3)
    wait_until(lambda: watch.value("warren_tenant_unacked_messages", **labels) == 3)
    # The broker counts the consumer in its own time (the flag may clear with ready at 0 first).
    wait_until(lambda: watch.value("warren_tenant_consumers", **labels) == 1)
    wait_until(lambda: not watch.series("warren_tenant_flag", **labels))
    assert watch.series("warren_tenant_flag_reason", **labels) == []
    assert watch.series("warren_tenant_wait_seconds", **labels) == []  # nothing ready waits
    assert watch.stop() == 0


def test_one_watcher_covers_several_vhosts_and_links_into_each(
    broker, channel, unique, pod, watcher_for
):
    exchange = unique("tenants")
    default_queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    vhost = unique("eu")
    broker.ctl("add_vhost", vhost)
    broker.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        eu_channel = pod("eu-setup", vhost=vhost).connection.channel()
        eu_queue = tenant_with_messages(eu_channel, exchange, "acme", unique("eu-acme"), 5)
        watch = watcher_for("--vhost", "/", "--vhost", vhost, WARREN_TENANT_EXCHANGE=exchange)
        here = {"vhost": "/", "tenant": "acme", "queue": default_queue}
        there = {"vhost": vhost, "tenant": "acme", "queue": eu_queue}

        # Each vhost's counts come from its own metrics answer, which may lag the other's.
        wait_until(lambda: watch.value("warren_tenant_ready_messages", **there) == 5)
        wait_until(lambda: watch.value("warren_tenant_ready_messages", **here) == 3)
        [at_home] = watch.series("warren_tenant_flag_reason", **here, kind="no-consumer")
        [abroad] = watch.series("warren_tenant_flag_reason", **there, kind="no-consumer")
        assert at_home.labels["link"] == f"{CONSOLE}/tenant?tenant=acme"
        assert (
            abroad.labels["link"]
            == f"{CONSOLE}/tenant?{urlencode({'tenant': 'acme', 'vhost': vhost})}"
        )
        assert watch.value("warren_broker_up") == 1
        assert watch.stop() == 0
    finally:
        broker.ctl("delete_vhost", vhost)


def test_a_stuck_pod_is_flagged_with_its_reason_and_link(channel, unique, pod, watcher_for):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    name = unique("pod-hung")
    pod(name).hold(queue, 2, 2)

    watch = watcher_for(WARREN_TENANT_EXCHANGE=exchange, WARREN_STUCK_AFTER_SECONDS="3")

    labels = {"vhost": "/", "pod": name, "queue": queue, "kind": "stuck"}
    wait_until(lambda: watch.value("warren_consumer_flag", **labels) == 1)
    [reason] = watch.series("warren_consumer_flag_reason", **labels)
    assert re.fullmatch(
        r"Saturated \(2 unacked, prefetch 2\) with no ack for \d+ s: a stuck worker\.",
        reason.labels["reason"],
    )
    assert reason.labels["link"] == f"{CONSOLE}/consumers?q={name}"


def test_the_broker_going_away_sets_up_to_0_and_coming_back_to_1(
    broker, channel, unique, watcher_for
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 1)
    proxy = TcpProxy(broker.management_port)
    try:
        watch = watcher_for(WARREN_TENANT_EXCHANGE=exchange, WARREN_MANAGEMENT_URL=proxy.url)
        wait_until(lambda: watch.value("warren_tenant_ready_messages", queue=queue) == 1)
        assert watch.value("warren_broker_up") == 1
        proxy.cut()
        wait_until(lambda: watch.value("warren_broker_up") == 0)
        # The last good counts stay, with their age in the timestamp.
        assert watch.value("warren_tenant_ready_messages", queue=queue) == 1
        assert requests.get(f"{watch.url}/healthz", timeout=5).status_code == 200
        proxy.restore()
        wait_until(lambda: watch.value("warren_broker_up") == 1)
    finally:
        proxy.close()


def test_a_port_in_use_is_one_sentence(broker, watcher_for):
    first = watcher_for()
    done = subprocess.run(
        [*first.process.args[:4], "--port", str(first.port)],
        env=cli_environment(broker),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"warren: Cannot serve metrics on 127.0.0.1:{first.port}: Address already in use.\n"
    )


def test_the_rules_hold_one_alert_per_flag_kind_and_pass_promtool():
    named = re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.MULTILINE)
    kinds = [alert_name(scope, kind) for scope, all_kinds in KINDS.items() for kind in all_kinds]
    assert named == [*kinds, "WarrenBrokerUnreachable", "WarrenWatcherDown"]
    for command in ("check", "test"):
        target = RULES if command == "check" else RULES.with_suffix(".test.yml")
        done = subprocess.run(
            ["promtool", command, "rules", target.name],
            cwd=RULES.parent, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def alerting(tmp_path, receiver) -> Iterator[Callable[[WatchProcess], None]]:
    """Starts Alertmanager posting to `receiver`, and Prometheus scraping a watcher with the
    shipped rules; stops both."""
    started = []

    def start(watch: WatchProcess) -> None:
        alertmanager, url = start_alertmanager(tmp_path, receiver)
        started.append(alertmanager)
        started.append(start_prometheus(tmp_path, watch, url)[0])

    yield start
    for process in reversed(started):
        stop(process)


def test_alerts_reach_the_receiver_through_prometheus_and_alertmanager_and_resolve(
    channel, unique, pod, watcher_for, alerting, receiver
):
    exchange = unique("tenants")
    backlog = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    held = tenant_with_messages(channel, exchange, "beta", unique("beta"), 2)
    name = unique("pod-hung")
    hung = pod(name)
    hung.hold(held, 2, 2)
    watch = watcher_for(WARREN_TENANT_EXCHANGE=exchange, WARREN_STUCK_AFTER_SECONDS="3")
    began = time.monotonic()
    alerting(watch)

    [backed_up] = wait_until(
        lambda: receiver.alerts("firing", alertname="WarrenTenantNoConsumer", tenant="acme"),
        timeout=90,
    )
    [stuck] = wait_until(
        lambda: receiver.alerts("firing", alertname="WarrenConsumerStuck", pod=name), timeout=90
    )
    seen = max(post["at"] for post in receiver.posts) - began
    print(f"\nwatcher start (the causes exist) to both alerts at the receiver: {seen:.1f} s")
    assert backed_up["labels"] | {"severity": "page", "queue": backlog} == backed_up["labels"]
    assert backed_up["annotations"] == {
        "summary": "3 ready and no consumer.",
        "console": f"{CONSOLE}/tenant?tenant=acme",
    }
    assert re.fullmatch(
        r"Saturated \(2 unacked, prefetch 2\) with no ack for \d+( min \d+)? s: a stuck worker\.",
        stuck["annotations"]["summary"],
    )
    assert stuck["annotations"]["console"] == f"{CONSOLE}/consumers?q={name}"

    pod(unique("pod")).hold(backlog, 3, 3)
    hung.connection.close()
    fixed = time.monotonic()
    wait_until(
        lambda: receiver.alerts("resolved", alertname="WarrenTenantNoConsumer", tenant="acme"),
        timeout=90,
    )
    print(f"fix to resolved at the receiver: {time.monotonic() - fixed:.1f} s")
    wait_until(
        lambda: receiver.alerts("resolved", alertname="WarrenConsumerStuck", pod=name), timeout=90
    )


def test_the_watcher_posts_firing_then_resolved_itself_and_retries_a_failing_receiver(
    channel, unique, pod, watcher_for
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    receiver = AlertReceiver(failures=2)
    try:
        watch = watcher_for("--webhook", receiver.url, WARREN_TENANT_EXCHANGE=exchange)
        [firing] = wait_until(lambda: receiver.alerts("firing", tenant="acme"), timeout=60)
        assert receiver.failed == 2
        assert firing["labels"] == {
            "alertname": "WarrenTenantNoConsumer", "severity": "page", "kind": "no-consumer",
            "vhost": "/", "tenant": "acme", "queue": queue,
        }  # fmt: skip
        assert firing["annotations"] == {
            "summary": "3 ready and no consumer.",
            "console": f"{CONSOLE}/tenant?tenant=acme",
        }
        assert "guest" not in str(receiver.posts)

        pod(unique("pod")).hold(queue, 3, 3)
        [resolved] = wait_until(lambda: receiver.alerts("resolved", tenant="acme"), timeout=60)
        assert resolved["labels"] == firing["labels"]
        # Once per change: one firing, one resolved, however many polls in between.
        assert [p["status"] for p in receiver.posts] == ["firing", "resolved"]
        assert watch.stop() == 0
    finally:
        receiver.close()


def test_two_watchers_share_one_store_and_a_restart_goes_on_from_it(
    channel, unique, watcher_for, tmp_path
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    store = tmp_path / "history.sqlite"

    def of_queue(what: str):
        with sqlite3.connect(store) as db:
            return db.execute(f"SELECT {what} FROM samples WHERE queue = ?", (queue,)).fetchone()[0]

    def samples() -> int:
        return of_queue("count(*)")

    def oldest() -> float:
        return of_queue("min(at)")

    def written(count: int) -> bool:
        """Whether `count` samples are written; else one more message, so that the next polls
        see the counts change (still counts are written once a minute)."""
        publish(channel, exchange, "acme", 1)
        return samples() >= count

    first = watcher_for(WARREN_TENANT_EXCHANGE=exchange)
    second = watcher_for(WARREN_TENANT_EXCHANGE=exchange)
    wait_until(lambda: written(10))
    assert first.stop() == 0
    kept, since = samples(), oldest()
    again = watcher_for(WARREN_TENANT_EXCHANGE=exchange)
    wait_until(lambda: written(kept + 5))
    assert oldest() == since

    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for watch in (first, second, again):
        assert "Traceback" not in watch.log.read_text() and "locked" not in watch.log.read_text()
