"""Dead letters at incident scale, on a real broker through the CLI: browse a whole queue
(tallies, pages past the first hundred) leaving every message in its order; find, export and
publish back; discard a selection with its ids audited; requeue a selection with a priority and
a rate; redrives counted, and held back past WARREN_MAX_REDRIVES."""

import json
import time

import pika

from dashboard.actions.audit import AuditLog
from dashboard.broker import sweep
from dashboard.local.workload import declare_tenant
from tests.support.helpers import drain, fill, run_cli, wait_until


def dead_lettered(channel, unique, expired: int, rejected: int, body=None) -> tuple[str, str, str]:
    """A tenant exchange, its tenant `acme`'s queue and dead-letter queue, the last holding
    `expired` messages e-0... (died of their TTL) then `rejected` messages r-0... (rejected by a
    consumer), in that order; each with header kind = odd/even, and `body(name)` as its body
    (default: the name)."""
    exchange, queue = unique("tenants"), unique("acme")
    declare_tenant(channel, exchange, "acme", queue=queue)
    dlq = f"{queue}.dlq"

    def send(name: str, number: int, **properties) -> None:
        payload = body(name) if body else name.encode()
        headers = {"kind": "odd" if number % 2 else "even", "n": number}
        channel.basic_publish(
            exchange,
            "acme",
            payload,
            pika.BasicProperties(delivery_mode=2, message_id=name, headers=headers, **properties),
        )

    for number in range(expired):
        send(f"e-{number}", number, expiration="0")
    wait_until(lambda: ready_count_of(channel, dlq) == expired, what=f"{expired} expired")
    for number in range(rejected):
        send(f"r-{number}", number)
    for _ in range(rejected):
        method, _properties, _body = channel.basic_get(queue)
        channel.basic_nack(method.delivery_tag, requeue=False)
    total = expired + rejected
    wait_until(lambda: ready_count_of(channel, dlq) == total, what=f"{total} dead letters")
    return exchange, queue, dlq


def ready_count_of(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def ids_in_order(channel, queue: str) -> list[str]:
    return [properties.message_id for _body, properties in drain(channel, queue)]


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{number}" for number in range(count)]


def cli_json(broker, audit, *args, **env) -> dict:
    done = run_cli(broker, audit, *args, "--json", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_browse_tallies_a_whole_queue_pages_past_a_hundred_and_keeps_its_order(
    broker, channel, unique, tmp_path
):
    _exchange, queue, dlq = dead_lettered(channel, unique, expired=30, rejected=220)
    audit = tmp_path / "audit.sqlite"

    seen = cli_json(
        broker, audit, "browse", "--queue", dlq, "--offset", "120", "--size", "5",
        "--by-header", "kind",
    )  # fmt: skip

    assert (seen["seen"], seen["matching"]) == (250, 250)
    tally = seen["tally"]
    assert tally["by_reason"] == {"rejected": 220, "expired": 30}
    assert (tally["by_queue"], tally["by_tenant"]) == ({queue: 250}, {"acme": 250})
    assert tally["by_header"] == {"even": 125, "odd": 125}
    assert sum(tally["by_minute"].values()) == 250
    assert [m["properties"]["message_id"] for m in seen["page"]] == names("r", 95)[90:95]
    assert [m["position"] for m in seen["page"]] == [121, 122, 123, 124, 125]
    assert seen["page"][0]["deaths"][0]["reason"] == "rejected"
    # Every message is still there, in its order.
    assert ids_in_order(channel, dlq) == names("e", 30) + names("r", 220)
    [record] = AuditLog(audit).records()
    assert (record.action, record.target, record.outcome) == ("browse", dlq, "ok")
    assert record.counts == {"seen": 250, "matching": 250, "shown": 5}


def test_find_export_and_publish_back_a_selection(broker, channel, unique, tmp_path):
    def body(name: str) -> bytes:
        if name == "r-3":
            return b"\x00\xff binary"
        number = int(name.split("-")[1])
        return json.dumps({"job": name, "error": "timeout" if number % 4 == 0 else None}).encode()

    _exchange, _queue, dlq = dead_lettered(channel, unique, expired=0, rejected=40, body=body)
    audit = tmp_path / "audit.sqlite"

    found = cli_json(broker, audit, "browse", "--queue", dlq, "--text", "timeout")
    assert found["matching"] == 10
    assert found["ids"] == [f"r-{number}" for number in range(0, 40, 4)]
    both = cli_json(
        broker, audit, "browse", "--queue", dlq, "--reason", "rejected", "--header", "kind=odd",
        "--message-id", "r-3", "--message-id", "r-4",
    )  # fmt: skip
    assert both["ids"] == ["r-3"]

    exported = tmp_path / "replay.jsonl"
    done = run_cli(broker, audit, "export", "--queue", dlq, "--file", str(exported),
                   "--text", "timeout")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exported 10 messages" in done.stderr
    done = run_cli(broker, audit, "export", "--queue", dlq, "--file", str(tmp_path / "bin.jsonl"),
                   "--message-id", "r-3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    [binary] = [json.loads(line) for line in (tmp_path / "bin.jsonl").read_text().splitlines()]
    assert binary["body_base64"] == "AP8gYmluYXJ5"
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["properties"]["message_id"] for line in lines] == found["ids"]
    assert lines[0]["properties"]["headers"]["kind"] == "even"

    replay = unique("replay")
    channel.queue_declare(replay, durable=True)
    published = cli_json(broker, audit, "publish", "--file", str(exported), "--queue", replay,
                         "--yes")  # fmt: skip
    assert published["published"] == 10
    assert published["ready_after"] == {replay: 10}
    replayed = drain(channel, replay)
    assert [body for body, _ in replayed] == [body(name) for name in found["ids"]]
    assert replayed[0][1].headers["kind"] == "even"
    assert ready_count_of(channel, dlq) == 40
    actions = [(r.action, r.counts) for r in AuditLog(audit).records()][::-1]
    assert [action for action, _ in actions] == ["browse", "browse", "export", "export", "publish"]
    assert actions[2][1] == {"exported": 10}
    assert actions[4][1] == {"published": 10, f"ready:{replay}": 10}


def test_publish_refuses_a_bad_file_and_changes_nothing(broker, channel, unique, tmp_path):
    replay = unique("replay")
    channel.queue_declare(replay, durable=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"routing_key": "a", "body": "fine"}\nnot json\n')

    done = run_cli(broker, tmp_path / "audit.sqlite", "publish", "--file", str(bad), "--queue",
                   replay, "--yes")  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"warren: Line 2 of {bad} is not an exported message (a JSON object with routing_key, "
        "properties and body or body_base64): nothing was published."
    )
    assert ready_count_of(channel, replay) == 0


def test_discard_deletes_only_the_selection_and_records_its_ids(broker, channel, unique, tmp_path):
    _exchange, _queue, dlq = dead_lettered(channel, unique, expired=4, rejected=16)
    audit = tmp_path / "audit.sqlite"

    refused = run_cli(broker, audit, "discard", "--queue", dlq, "--yes")
    assert refused.returncode == 1
    assert "Discard takes a selection" in refused.stderr
    done = cli_json(broker, audit, "discard", "--queue", dlq, "--header", "kind=odd", "--yes")

    odd = [f"e-{n}" for n in (1, 3)] + [f"r-{n}" for n in range(1, 16, 2)]
    assert (done["discarded"], done["ids"], done["ready_after"]) == (10, odd, 10)
    even = [f"e-{n}" for n in (0, 2)] + [f"r-{n}" for n in range(0, 16, 2)]
    assert ids_in_order(channel, dlq) == even
    record = AuditLog(audit).records()[0]
    assert (record.action, record.outcome) == ("discard", "ok")
    assert record.counts == {"discarded": 10, "ids": odd, "ready_after": 10}
    assert record.parameters["filter"] == {"header": "kind", "value": "odd"}


def test_requeue_a_selection_with_priority_and_rate(broker, channel, unique, tmp_path):
    _exchange, queue, dlq = dead_lettered(channel, unique, expired=0, rejected=30)
    audit = tmp_path / "audit.sqlite"

    started = time.monotonic()
    done = cli_json(
        broker, audit, "requeue", "--from", dlq, "--header", "kind=even", "--priority", "7",
        "--rate", "10", "--yes",
    )  # fmt: skip
    took = time.monotonic() - started

    assert (done["moved"], done["kept"], done["failed"]) == (15, 15, 0)
    # 15 copies at 10 a second: the last one no sooner than 1.4 s after the first.
    assert took >= 1.4
    requeued = drain(channel, queue)
    assert [p.message_id for _, p in requeued] == [f"r-{n}" for n in range(0, 30, 2)]
    assert {(p.priority, p.headers["x-warren-redrives"]) for _, p in requeued} == {(7, 1)}
    # Those not selected are back in the dead-letter queue, without a redrive counted.
    left = drain(channel, dlq)
    assert [p.message_id for _, p in left] == [f"r-{n}" for n in range(1, 30, 2)]
    assert all("x-warren-redrives" not in p.headers for _, p in left)
    record = AuditLog(audit).records()[0]
    assert (record.parameters["priority"], record.parameters["rate"]) == (7, 10.0)


def test_a_dead_letter_redriven_too_often_is_held_back(broker, channel, unique, tmp_path):
    _exchange, queue, dlq = dead_lettered(channel, unique, expired=0, rejected=5)
    audit = tmp_path / "audit.sqlite"

    def redrive_and_fail_again() -> dict:
        moved = cli_json(broker, audit, "requeue", "--from", dlq, "--yes", WARREN_MAX_REDRIVES="2")
        for _ in range(moved["moved"]):
            method, _properties, _body = channel.basic_get(queue)
            channel.basic_nack(method.delivery_tag, requeue=False)
        wait_until(lambda: ready_count_of(channel, dlq) == 5, what="5 dead letters again")
        return moved

    assert redrive_and_fail_again()["moved"] == 5
    assert redrive_and_fail_again()["moved"] == 5
    seen = cli_json(broker, audit, "browse", "--queue", dlq)
    assert seen["tally"]["redriven"] == 5

    held = cli_json(broker, audit, "requeue", "--from", dlq, "--yes", WARREN_MAX_REDRIVES="2")
    assert (held["moved"], held["held_back"], held["left"]) == (0, 5, 5)
    assert ready_count_of(channel, queue) == 0
    taken = cli_json(broker, audit, "requeue", "--from", dlq, "--include-redriven", "--yes",
                     WARREN_MAX_REDRIVES="2")  # fmt: skip
    assert (taken["moved"], taken["left"]) == (5, 0)
    assert {p.headers["x-warren-redrives"] for _, p in drain(channel, queue)} == {3}


def test_browse_of_a_quorum_queue_is_a_confirmed_change(broker, channel, unique, tmp_path):
    queue = unique("quorum-dlq")
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    for number in range(3):
        channel.basic_publish("", queue, f"q-{number}".encode(), pika.BasicProperties(
            delivery_mode=2, message_id=f"q-{number}"))  # fmt: skip
    audit = tmp_path / "audit.sqlite"

    asked = run_cli(broker, audit, "browse", "--queue", queue)
    assert asked.returncode == 1
    assert "is a quorum queue" in asked.stderr and "Confirm to browse anyway" in asked.stderr
    seen = cli_json(broker, audit, "browse", "--queue", queue, "--yes")

    assert seen["seen"] == 3
    wait_until(lambda: ready_count_of(channel, queue) == 3, what="the returns")
    counted = [p.headers.get("x-delivery-count") for _, p in drain(channel, queue)]
    assert counted == [1, 1, 1]
    record = AuditLog(audit).records()[0]
    assert (record.action, record.outcome) == ("browse", "ok")


def test_the_tenant_page_looks_through_dead_letters_and_acts_on_a_search(
    broker, channel, unique, console, tmp_path
):
    exchange, _queue, dlq = dead_lettered(channel, unique, expired=2, rejected=8)
    audit = tmp_path / "audit.sqlite"
    app = console(
        {"tenant": "acme"}, page="pages/tenant.py", WARREN_TENANT_EXCHANGE=exchange,
        WARREN_AUDIT_DB=str(audit),
    )  # fmt: skip
    assert not app.exception

    header = next(box for box in app.text_input if box.label == "Header NAME=VALUE")
    header.set_value("kind=odd")
    next(box for box in app.text_input if box.label == "Also count by header").set_value("kind")
    next(button for button in app.button if button.label == "Look through").click().run()

    assert not app.exception
    captions = [caption.value.replace("\\", "") for caption in app.caption]
    assert any(
        caption.startswith(f"Looked through 10 messages of {dlq} in ")
        and "5 match with header kind='odd'" in caption
        for caption in captions
    ), captions
    page = next(frame.value for frame in app.dataframe if "message_id" in frame.value.columns)
    assert page["message_id"].tolist() == ["e-1", "r-1", "r-3", "r-5", "r-7"]
    assert ready_count_of(channel, dlq) == 10

    app.button(key=f"discard-{dlq}").click().run()
    assert "Discard deletes for good the messages of" in app.markdown[-1].value.replace("\\", "")
    app.text_input(key=f"discard-confirm-{dlq}").set_value(dlq).run()
    app.button(key=f"discard-go-{dlq}").click().run()

    assert not app.exception
    assert app.success[0].value.replace("\\", "") == (
        f"Discarded 5 messages (their ids are in the audit log); 5 ready in {dlq} now."
    )
    assert ids_in_order(channel, dlq) == ["e-0", "r-0", "r-2", "r-4", "r-6"]
    actions = [(r.action, r.actor, r.outcome) for r in AuditLog(audit).records()][::-1]
    assert actions == [
        ("browse", "guest (console)", "ok"),
        ("discard", "guest (console)", "ok"),
        ("browse", "guest (console)", "ok"),
    ]


def test_a_pass_spread_over_channels_keeps_the_order_and_takes_exactly(
    session_for, channel, unique, monkeypatch
):
    # A pass holds at most CHANNEL_HOLDS a channel: here 7, so 60 messages take 9 channels.
    monkeypatch.setattr(sweep, "CHANNEL_HOLDS", 7)
    queue = unique("many")
    channel.queue_declare(queue, durable=True)
    fill(channel, queue, 60)
    seen: list[str] = []

    def visit(delivery) -> bool:
        seen.append(delivery.properties.message_id)
        return delivery.properties.headers["n"] % 9 == 0

    result = sweep.Sweep(session_for(), queue, 60, visit).run()

    assert seen == names("m", 60)
    assert (result.seen, result.taken, result.ready_after) == (60, 7, 53)
    assert ids_in_order(channel, queue) == [f"m-{n}" for n in range(60) if n % 9]
