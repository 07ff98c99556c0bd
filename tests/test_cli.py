"""`python -m dashboard tenants` as a script would run it: a real process, exit codes, JSON."""

import json
import re
import sys
import time
from pathlib import Path

import pika

from dashboard.local.rabbitmq import free_port
from tests.support.helpers import run_cli, tenant_with_messages, wait_until


def test_tenants_json_is_an_array_of_tenant_objects(broker, channel, unique, pod):
    exchange = unique("tenants")
    first = tenant_with_messages(channel, exchange, "acme", unique("acme"), 5)
    second = tenant_with_messages(channel, exchange, "globex", unique("globex"), 2)
    assert pod("pod-cli").hold(first, prefetch=2, expect=2) == 2
    keys = ("tenant", "vhost", "queue", "ready", "unacked", "consumers")
    expected = [("acme", "/", first, 3, 2, 1), ("globex", "/", second, 2, 0, 0)]

    def listed():
        done = run_cli(broker, None, "tenants", "--json", WARREN_TENANT_EXCHANGE=exchange)
        assert (done.returncode, done.stderr) == (0, "")
        records = json.loads(done.stdout)
        return records if [tuple(r[key] for key in keys) for r in records] == expected else None

    records = wait_until(listed, what="the CLI to list both tenants")
    assert all(isinstance(record[key], int) for record in records for key in keys[3:])


def test_tenants_table_and_the_warren_script(broker, channel, unique):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme corp", unique("acme"), 1234)
    warren = (str(Path(sys.executable).parent / "warren"),)

    def table():
        done = run_cli(broker, None, "tenants", "--exchange", exchange, entry=warren)
        assert done.returncode == 0, done.stderr
        return done.stdout if "1,234" in done.stdout else None

    lines = wait_until(table, what="the table to show 1,234 ready").splitlines()
    assert lines[0].split() == [
        "TENANT", "QUEUE", "READY", "UNACKED", "TOTAL", "CONSUMERS", "TYPE", "FLAGS", "DEAD",
        "LETTERS", "WAITING", "DRAIN",
    ]  # fmt: skip
    assert lines[1].split()[:8] == ["acme", "corp", queue, "1,234", "0", "1,234", "0", "classic"]
    # First seen by this run's history: the backlog is at least as old as that.
    assert lines[1].endswith("  never: no consumer")
    assert re.search(r"  >= \d+ s  ", lines[1])
    assert lines[-1] == "1 tenant in 1 queue: 1,234 ready, 0 unacked, 0 consumers"


def test_tenants_without_statistics_are_counts_from_the_endpoint_and_say_what_they_lack(
    broker, channel, unique, pod
):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 3)
    assert pod(unique("pod")).hold(queue, prefetch=1, expect=1) == 1
    env = {"WARREN_TENANT_EXCHANGE": exchange, "WARREN_METRICS_URL": broker.metrics_url}

    def counted(*flags: str):
        done = run_cli(broker, None, "tenants", "--json", *flags, **env)
        assert (done.returncode, done.stderr) == (0, "")
        [record] = json.loads(done.stdout)
        counts = (record["ready"], record["unacked"], record["consumers"])
        return record if counts == (2, 1, 1) else None

    bare = wait_until(lambda: counted("--no-statistics"), what="the endpoint's counts")
    full = wait_until(counted, what="the statistics' counts")
    table = run_cli(broker, None, "tenants", "--no-statistics", **env)

    assert (bare["publish_rate"], bare["acks"], bare["redeliveries"]) == (None, None, None)
    assert isinstance(full["acks"], int) and full["publish_rate"] is not None
    assert table.stdout.splitlines()[-1] == (
        "Counts only, from the metrics endpoint: rates and the no-acks and redelivery-loop "
        "flags need --statistics (the default up to WARREN_STATISTICS_UP_TO queues in the vhost)."
    )


def test_tenants_sorted_by_wait_put_the_oldest_work_first(broker, channel, unique):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "busy", unique("busy"), 5)
    old = tenant_with_messages(channel, exchange, "old", unique("old"), 0)
    channel.basic_publish("", old, b"job", pika.BasicProperties(timestamp=int(time.time()) - 3600))

    def listed():
        done = run_cli(broker, None, "tenants", "--json", "--sort", "wait", "--exchange", exchange)
        assert (done.returncode, done.stderr) == (0, "")
        records = json.loads(done.stdout)
        return records if [r["ready"] for r in records] == [1, 5] else None

    old_row, busy_row = wait_until(listed, what="both tenants, the oldest work first")
    assert (old_row["tenant"], old_row["wait"]["measured_by"]) == ("old", "oldest-message")
    assert 3600 <= old_row["wait"]["seconds"] < 3700
    assert (busy_row["tenant"], busy_row["wait"]["measured_by"]) == ("busy", "backlog")


def assert_one_sentence(done, sentence: str) -> None:
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"warren: {sentence}\n"


def test_wrong_password_exits_1_with_a_sentence_and_no_password(broker):
    done = run_cli(broker, None, "tenants", "--json", WARREN_PASSWORD="not-the-password")
    assert_one_sentence(
        done,
        f"The broker at {broker.management_url} refused user 'guest': "
        "wrong user name or password (401).",
    )
    assert "not-the-password" not in done.stderr


def test_broker_down_exits_1_with_a_sentence(broker):
    url = f"http://127.0.0.1:{free_port()}"
    done = run_cli(broker, None, "tenants", WARREN_MANAGEMENT_URL=url)
    assert_one_sentence(done, f"Cannot reach the management API at {url}: connection refused.")


def test_missing_exchange_exits_1_with_a_sentence(broker, unique):
    exchange = unique("missing")
    done = run_cli(broker, None, "tenants", "--json", WARREN_TENANT_EXCHANGE=exchange)
    assert_one_sentence(
        done,
        f"The tenant exchange {exchange!r} does not exist in vhost '/', so there are no tenant "
        "queues to show: check WARREN_TENANT_EXCHANGE and WARREN_VHOST.",
    )


def test_bad_setting_exits_1_naming_the_variable(broker):
    done = run_cli(broker, None, "tenants", WARREN_REQUEST_TIMEOUT="-1")
    assert_one_sentence(
        done, "Invalid setting WARREN_REQUEST_TIMEOUT: Input should be greater than 0."
    )
