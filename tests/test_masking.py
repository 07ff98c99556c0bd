"""Payloads for a team: who may read them (WARREN_PAYLOAD_ROLE), and what is masked (header
names, JSON paths, regular expressions) the same way in peek, browse, search, export and the
selections of actions, so that masked data cannot be found by searching for it either."""

import io
import json

import pika
import pytest

from dashboard.actions.browse import browse, export
from dashboard.actions.peek import peek
from dashboard.errors import ReadOnly
from dashboard.people import Person, Role
from dashboard.reads.masking import Masking
from dashboard.reads.peek import plan_peek
from dashboard.reads.selection import Selection
from dashboard.settings import SettingsError, load_settings
from tests.support.helpers import declare, queue_counts

CARD = "4111111111111111"
SECRET = "Bearer s3cret-token"
TICKET = "1234-5678"
MASKS = {
    "mask_headers": ["Authorization"],
    "mask_json_paths": ["$.card.number", "$.items[*].email"],
    "mask_patterns": [r"\b\d{4}-\d{4}\b"],
}
BODY = {
    "tenant": "acme",
    "card": {"number": CARD, "brand": "visa"},
    "items": [{"email": "ann@example.com"}, {"email": "bob@example.com"}],
    "note": f"see ticket {TICKET}",
}


@pytest.fixture
def masked_queue(channel, unique, session_for):
    queue = unique("masked")
    declare(channel, queue)
    headers = {"authorization": SECRET, "x-ticket": f"ticket {TICKET}", "x-tenant": "acme"}
    properties = pika.BasicProperties(
        delivery_mode=2, headers=headers, message_id="m-1", correlation_id=f"ticket {TICKET}"
    )
    channel.basic_publish("", queue, json.dumps(BODY).encode(), properties)
    channel.basic_publish("", queue, b"plain text, nothing to hide", pika.BasicProperties())
    return queue, session_for(**MASKS)


def hidden(text: str) -> bool:
    return not any(secret in text for secret in (CARD, SECRET, TICKET, "ann@example.com"))


def test_a_peek_shows_masked_headers_and_body(masked_queue):
    queue, session = masked_queue
    result = peek(session, plan_peek(session, queue), 2, "guest (test)")

    first, second = result.messages
    assert first.headers == {"authorization": "***", "x-ticket": "ticket ***", "x-tenant": "acme"}
    assert first.properties["correlation_id"] == "ticket ***"
    assert json.loads(first.shown) == {
        "tenant": "acme",
        "card": {"number": "***", "brand": "visa"},
        "items": [{"email": "***"}, {"email": "***"}],
        "note": "see ticket ***",
    }
    assert second.shown == "plain text, nothing to hide"
    assert queue_counts(session.settings, queue) == (2, 0)


def test_masked_data_cannot_be_found_by_browse_or_export(masked_queue):
    queue, session = masked_queue
    plan = plan_peek(session, queue)

    def matching(**criteria) -> int:
        return browse(session, plan, Selection(**criteria), "guest (test)").matching

    found = {
        "card": matching(text=CARD),
        "ticket": matching(text=TICKET),
        "email": matching(text="ann@example.com"),
        "secret header": matching(header="authorization", value=SECRET),
        "visible text": matching(text='"brand": "visa"'),
        "visible header": matching(header="x-tenant", value="acme"),
    }
    out = io.StringIO()
    exported = export(session, plan, Selection(), out, "guest (test)")
    tally = browse(session, plan, Selection(), "guest (test)", header="authorization").tally

    assert found == {
        "card": 0, "ticket": 0, "email": 0, "secret header": 0,
        "visible text": 1, "visible header": 1,
    }  # fmt: skip
    assert exported == 2 and hidden(out.getvalue())
    assert (
        json.loads(out.getvalue().splitlines()[0])["properties"]["headers"]["authorization"]
        == "***"
    )
    assert tally.by_header == {"***": 1, "(not set)": 1}
    assert queue_counts(session.settings, queue) == (2, 0)


def test_an_action_s_selection_cannot_find_masked_data_either():
    masking = Masking(**{key.removeprefix("mask_"): value for key, value in MASKS.items()})
    properties = pika.BasicProperties(headers={"authorization": SECRET})
    body = json.dumps(BODY).encode()

    assert not Selection(text=CARD).matches(masking, properties, "acme", body)
    assert not Selection(header="authorization", value=SECRET).matches(
        masking, properties, "acme", body
    )
    assert Selection(text="visa").matches(masking, properties, "acme", body)


def test_the_first_bytes_of_a_long_body_are_not_shown_when_anything_is_masked():
    """They may end inside a JSON value or inside a match."""
    for masking in (Masking([], ["$.card.number"], []), Masking([], [], [r"\d{16}"])):
        assert masking.masked_body(b'{"card": {"number": "41111111111', complete=False) == b"***"


def test_escapes_numbers_and_nested_tables_do_not_slip_through():
    masking = Masking(["card"], [], [r"\d{2}/\d{2}/\d{4}", r"\d{16}"])
    body = b'{"dob": "12\\/31\\/1990", "acct": 4111111111111111, "n": 3}'

    assert json.loads(masking.masked_body(body)) == {"dob": "***", "acct": "***", "n": 3}
    assert masking.masked_headers({"acct": 4111111111111111, "meta": {"card": "x", "k": 1}}) == {
        "acct": "***", "meta": {"card": "***", "k": 1},
    }  # fmt: skip
    untouched = b'{"a": "1"}'
    assert masking.masked_body(untouched) is untouched


def test_message_ids_are_compared_as_shown():
    masking = Masking([], [], [r"\d{16}"])
    properties = pika.BasicProperties(message_id=f"m-{CARD}")

    assert not Selection(message_ids=[f"m-{CARD}"]).matches(masking, properties, "acme")
    assert Selection(message_ids=["m-***"]).matches(masking, properties, "acme")


def test_a_viewer_reads_payloads_only_where_the_payload_role_allows(masked_queue, session_for):
    queue, session = masked_queue
    vera = Person(email="vera@example.com", role=Role.viewer)
    as_vera = session.acting_for(vera)
    granted = session_for(**MASKS, payload_role="viewer").acting_for(vera)

    with pytest.raises(ReadOnly) as caught:
        peek(as_vera, plan_peek(as_vera, queue), 1, "vera (test)")
    shown = peek(granted, plan_peek(granted, queue), 1, "vera (test)")

    assert str(caught.value) == (
        "vera@example.com is a viewer; peek needs the operator role (WARREN_PAYLOAD_ROLE): "
        "nothing was shown."
    )
    assert shown.messages[0].headers["authorization"] == "***"


@pytest.mark.parametrize(
    ("setting", "value", "sentence"),
    [
        ("mask_json_paths", ["card.number"], "'card.number' is not a JSON path"),
        ("mask_json_paths", ["$.a..b"], "'$.a..b' is not a JSON path"),
        ("mask_patterns", ["(unclosed"], "'(unclosed' is not a regular expression"),
    ],
)
def test_a_bad_masking_rule_is_a_sentence(setting, value, sentence):
    with pytest.raises(SettingsError) as caught:
        load_settings(**{setting: value})
    assert str(caught.value).startswith(f"Invalid setting WARREN_{setting.upper()}: {sentence}")
