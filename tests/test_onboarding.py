"""`warren bind` on a real broker: idempotent, a differing second request names the difference
and changes nothing, bad tenant ids are refused per row, bulk from a file; the Onboarding page's
words and results table."""

import json

import pika
import pytest

from dashboard.actions.audit import AuditLog
from dashboard.actions.bind import TenantSpec, bind_sentence
from dashboard.errors import NotFound
from tests.support.helpers import queue_counts, run_cli


def bind(broker, tmp_path, exchange: str, *args: str):
    return run_cli(
        broker,
        tmp_path / "audit.sqlite",
        "bind",
        "--exchange",
        exchange,
        *args,
        "--yes",
        "--json",
    )


def test_bind_twice_creates_once(broker, settings_for, channel, unique, tmp_path):
    exchange = unique("tenants")
    tenant = unique("acme")

    first = bind(broker, tmp_path, exchange, "--tenant", tenant)
    second = bind(broker, tmp_path, exchange, "--tenant", tenant)

    assert first.returncode == second.returncode == 0
    [created] = json.loads(first.stdout)
    [unchanged] = json.loads(second.stdout)
    assert (created["outcome"], sorted(created["created"])) == (
        "created",
        sorted([f"tenant.{tenant}", exchange, f"{exchange}.dlx", f"tenant.{tenant}.dlq"]),
    )
    assert (unchanged["outcome"], unchanged["created"]) == ("unchanged", [])
    channel.basic_publish(exchange, tenant, b"routed", mandatory=True)
    assert queue_counts(settings_for(), f"tenant.{tenant}") == (1, 0)
    outcomes = [r.outcome for r in AuditLog(tmp_path / "audit.sqlite").records()]
    assert outcomes == ["unchanged", "created"]


def test_a_different_argument_is_named_and_changes_nothing(broker, session_for, unique, tmp_path):
    exchange, tenant, plain = unique("tenants"), unique("acme"), unique("plain")
    assert bind(broker, tmp_path, exchange, "--tenant", tenant).returncode == 0
    assert bind(broker, tmp_path, exchange, "--tenant", plain, "--no-dead-letters").returncode == 0

    priority = bind(broker, tmp_path, exchange, "--tenant", tenant, "--max-priority", "5")
    dead_letters = bind(broker, tmp_path, exchange, "--tenant", plain)

    assert priority.returncode == dead_letters.returncode == 1
    [row] = json.loads(priority.stdout)
    assert row["outcome"] == "failed"
    assert row["error"].startswith(
        f"Queue 'tenant.{tenant}' already exists with a different x-max-priority than asked"
    )
    assert row["error"].endswith("Nothing was changed.")
    [row] = json.loads(dead_letters.stdout)
    assert "a different x-dead-letter-exchange" in row["error"]
    # The dead-letter queue that request also asked for was not created.
    with pytest.raises(NotFound):
        session_for().queue_counts(f"tenant.{plain}.dlq")


def test_bulk_from_a_file_with_a_result_per_row(broker, settings_for, unique, tmp_path):
    exchange = unique("tenants")
    good, also_good = unique("globex"), unique("initech")
    listing = tmp_path / "tenants.csv"
    listing.write_text(f"tenant,plan\n{good},gold\n\n# a comment\nnot ok!,free\n{also_good},free\n")

    done = run_cli(
        broker,
        tmp_path / "audit.sqlite",
        "bind",
        "--exchange",
        exchange,
        "--file",
        str(listing),
        "--queue-type",
        "quorum",
        "--yes",
        "--json",
    )

    rows = {row["tenant"]: row for row in json.loads(done.stdout)}
    assert done.returncode == 1
    assert {tenant: row["outcome"] for tenant, row in rows.items()} == {
        good: "created",
        "not ok!": "failed",
        also_good: "created",
    }
    assert rows["not ok!"]["error"] == (
        "'not ok!' is not a valid tenant id: use 1 to 100 letters, digits, '.', '_' or '-', "
        "starting with a letter or a digit."
    )
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="inequivalent arg"):
        connection.channel().queue_declare(f"tenant.{good}", durable=True)  # it is quorum
    connection.close()


def test_without_yes_nothing_is_declared(broker, session_for, unique, tmp_path):
    exchange, tenant = unique("tenants"), unique("acme")
    done = run_cli(
        broker, tmp_path / "audit.sqlite", "bind", "--exchange", exchange, "--tenant", tenant
    )
    assert done.returncode == 1
    assert done.stderr.endswith("Nothing was changed: add --yes to do it.\n")
    with pytest.raises(NotFound):
        session_for().queue_counts(f"tenant.{tenant}")


def test_unbind_refuses_a_non_empty_queue_unless_forced(
    broker, settings_for, session_for, channel, unique, tmp_path
):
    exchange, tenant = unique("tenants"), unique("acme")
    assert bind(broker, tmp_path, exchange, "--tenant", tenant).returncode == 0
    channel.basic_publish(exchange, tenant, b"job", mandatory=True)
    audit = tmp_path / "audit.sqlite"
    unbind = ["unbind", "--exchange", exchange, "--tenant", tenant, "--delete-queue", "--yes"]

    refused = run_cli(broker, audit, *unbind)
    forced = run_cli(broker, audit, *unbind, "--force", "--json")

    assert refused.returncode == 1
    assert refused.stderr == (
        f"warren: Queue 'tenant.{tenant}' holds 1 ready message: nothing was changed. Force "
        "the deletion (--force) to drop them with the queue.\n"
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout) == {
        "tenant": tenant,
        "queues": [f"tenant.{tenant}"],
        "deleted": [f"tenant.{tenant}"],
        "dropped": 1,
    }
    with pytest.raises(NotFound):
        session_for().queue_counts(f"tenant.{tenant}")
    assert queue_counts(settings_for(), f"tenant.{tenant}.dlq") == (0, 0)  # kept
    assert [r.outcome for r in AuditLog(audit).records()][:2] == ["ok", "failed"]


def test_unbind_only_keeps_the_queue_and_its_messages(
    broker, settings_for, channel, unique, tmp_path
):
    exchange, tenant = unique("tenants"), unique("acme")
    assert bind(broker, tmp_path, exchange, "--tenant", tenant).returncode == 0
    channel.basic_publish(exchange, tenant, b"job", mandatory=True)

    done = run_cli(
        broker,
        tmp_path / "audit.sqlite",
        "unbind",
        "--exchange",
        exchange,
        "--tenant",
        tenant,
        "--yes",
    )

    assert done.stdout == f"Unbound {tenant!r} from tenant.{tenant}.\n"
    assert queue_counts(settings_for(), f"tenant.{tenant}") == (1, 0)
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish(exchange, tenant, b"job", mandatory=True)


def test_the_bind_sentence_names_what_is_declared_for_one_tenant_or_several():
    one = bind_sentence([TenantSpec(tenant="acme")], "tenants")
    several = bind_sentence(
        [TenantSpec(tenant=name, dead_letters=False) for name in ("acme", "globex")], "tenants"
    )

    assert one == (
        "Bind declares, where missing, the queue tenant.<id> (classic) bound to 'tenants' with "
        "routing key = tenant id, and its dead-letter queue tenant.<id>.dlq bound to "
        "'tenants.dlx', for 1 tenant: acme."
    )
    assert several == (
        "Bind declares, where missing, the queue tenant.<id> (classic) bound to 'tenants' with "
        "routing key = tenant id, for 2 tenants: acme, globex."
    )


def test_the_onboarding_page_says_one_tenant_and_shows_no_none(unique, console, tmp_path):
    exchange, tenant = unique("tenants"), unique("acme")
    app = console(
        page="pages/onboarding.py",
        WARREN_TENANT_EXCHANGE=exchange,
        WARREN_AUDIT_DB=str(tmp_path / "audit.sqlite"),
    )

    app.text_area(key="bind-ids").set_value(tenant).run()
    launcher = app.button(key="bind-tenants").label
    app.button(key="bind-tenants").click().run()
    go = app.button(key="bind-go").label
    app.button(key="bind-go").click().run()

    assert not app.exception
    assert (launcher, go) == ("Bind 1 tenant…", "Bind 1 tenant")
    assert app.success[0].value == "1 of 1 tenant bound."
    [results] = app.dataframe
    assert results.value[["tenant", "outcome", "error"]].values.tolist() == [
        [tenant, "created", ""]
    ]
    columns = json.loads(results.proto.columns)
    assert [columns[name]["label"] for name in results.value.columns] == [
        "Tenant",
        "Queue",
        "Outcome",
        "Created",
        "Error",
    ]
