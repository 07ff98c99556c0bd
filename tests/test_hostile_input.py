"""Hostile input, by property (hypothesis): any name, id, payload or header a publisher or a
user may send is handled as data, and every refusal is a sentence."""

import base64
import json
import re
import string
from urllib.parse import unquote

import pika
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.actions.bind import TENANT_ID, TENANT_RULE, check_tenant_id
from dashboard.broker.management import api_path
from dashboard.cli.output import cell
from dashboard.errors import WarrenError
from dashboard.reads.masking import Masking
from dashboard.reads.peek import SHOW_CHARS, decode_message, render_payload
from dashboard.visible import visible
from pages.components.formatting import literal, typed_back
from tests.support.helpers import message_labels, run_cli, tenant_with_messages

PUNCTUATION = set(string.punctuation)
# What a publisher can put in a header, as the management API gives it back: JSON values, nested.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.text(min_size=1))
def test_every_name_is_one_path_segment(name):
    path = api_path("queues", "/", name)
    prefix, segment = path.rsplit("/", 1)
    assert prefix == "/api/queues/%2F"
    assert unquote(segment) == name
    assert not set(segment) & set("/?# ")


HIDDEN = r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
LINK_LIKE = re.compile(r"https?://|www\.|[-.\w+]@[-\w]+\.[-\w]")
NAMES = st.text() | st.builds(
    "".join,
    st.lists(
        st.sampled_from(["https://", "www.", "a@b.co", "`", "\u202e", "\u200b", "x", " ", "\\"])
    ),
)


def markdown_pieces(shown: str) -> list[tuple[str, bool]]:
    """`shown` read back as markdown would, in order: (text, whether it is a code span), plain
    text with its escapes resolved, and every unescaped character checked to be inert."""
    pieces, plain, at = [], [], 0
    while at < len(shown):
        char = shown[at]
        if char == "`":
            pieces.append(("".join(plain), False))
            plain = []
            fence = re.match("`+", shown[at:]).group()
            end = shown.index(fence, at + len(fence))
            inner = shown[at + len(fence) : end]
            padded = inner.startswith(" ") and inner.endswith(" ") and inner.strip(" ")
            pieces.append((inner[1:-1] if padded else inner, True))
            at = end + len(fence)
        elif char == "\\":
            assert shown[at + 1] in PUNCTUATION
            plain.append(shown[at + 1])
            at += 2
        else:
            assert char not in PUNCTUATION
            plain.append(char)
            at += 1
    return [*pieces, ("".join(plain), False)]


@given(NAMES)
def test_literal_shows_the_text_as_itself_and_never_as_a_link(text):
    shown = literal(text)
    assert not re.search(HIDDEN, shown)
    pieces = markdown_pieces(shown)
    assert "".join(piece for piece, _ in pieces) == visible(text)
    assert not [piece for piece, code in pieces if not code and LINK_LIKE.search(piece)]


def test_look_alike_names_show_what_they_hold():
    assert visible("tenant.\u202egnp.exe") == "tenant.\\u202egnp.exe"
    assert visible("acme\u200b") == "acme\\u200b"
    assert typed_back("acme\\u200b", "acme\u200b") and not typed_back("acme", "acme\u200b")


@given(st.text(max_size=300))
def test_a_tenant_id_is_valid_or_refused_with_the_rule(tenant):
    try:
        check_tenant_id(tenant)
    except WarrenError as exc:
        assert not TENANT_ID.fullmatch(tenant)
        assert str(exc).endswith(f"use {TENANT_RULE}.")
    else:
        assert TENANT_ID.fullmatch(tenant)


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=2**40))
def test_any_payload_renders_within_bounds(payload, extra):
    kind, shown, _cut = render_payload(payload, len(payload) + extra)
    assert kind in {"empty", "json", "text", "binary"}
    assert len(shown) <= SHOW_CHARS


@settings(max_examples=300)
@given(
    # Any header but x-death, which the message's deaths carry.
    st.dictionaries(st.text().filter(lambda name: name != "x-death"), JSON, max_size=5),
    st.lists(st.dictionaries(st.sampled_from(["reason", "count", "queue", "time",
                                              "routing-keys", "exchange"]), JSON)),
    st.binary(max_size=200),
)  # fmt: skip
def test_any_headers_and_x_death_decode(headers, deaths, payload):
    item = {
        "properties": {"headers": headers | {"x-death": deaths}, "priority": 3},
        "payload": base64.b64encode(payload).decode(),
        "payload_bytes": len(payload),
        "payload_encoding": "base64",
    }
    message = decode_message(1, item, Masking([], [], []))
    assert message.headers == headers
    assert len(message.deaths) <= len(deaths)


@given(st.text())
def test_a_table_cell_prints_no_control_character(value):
    printed = cell(value)
    assert not re.search(HIDDEN, printed)


def test_deeply_nested_json_is_shown_as_text():
    payload = b"[" * 100_000 + b"]" * 100_000
    kind, shown, cut = render_payload(payload, len(payload))
    assert (kind, cut) == ("text", True)
    assert len(shown) == SHOW_CHARS


# The fixed corpus, through the real broker, the CLI and the console.
NAMES = [
    "a/b", "100%", "a%2Fb", "#hash", "what?", "with space", "../../etc", "ünïcödé-队列-🐇",
    "x" * 255, "<script>alert(1)</script>", "**bold** _it_ `code` :red[x] $x$",
]  # fmt: skip
PAYLOADS = [
    bytes(range(256)),
    b"\xff\xfe invalid \xc3\x28 utf-8",
    b"<b>bold</b><img src=x onerror=alert(1)>",
    b"<script>alert(document.cookie)</script>",
    b"# Title\n**bold** [link](http://evil) :red[x] $x$ <!-- -->",
    b"[" * 50_000 + b"]" * 50_000,
    b"y" * 16 * 1024 * 1024,
]


def test_hostile_names_and_payloads_through_the_cli(broker, channel, unique, tmp_path):
    for number, name in enumerate(NAMES):
        queue = name if len(name) == 255 else f"{name}-{unique('q')}"
        channel.queue_declare(queue, durable=True)
        channel.basic_publish(
            "", queue, PAYLOADS[number % len(PAYLOADS)],
            pika.BasicProperties(headers={"nested": {"list": [1, {"deep": [True, "x", -7]}]}}),
            mandatory=True,
        )  # fmt: skip

        peeked = run_cli(broker, tmp_path / "a", "peek", "--queue", queue, "--json")
        dry = run_cli(broker, tmp_path / "a", "purge", "--queue", queue, "--dry-run", "--json")

        assert peeked.returncode == 0, (queue, peeked.stderr)
        [message] = json.loads(peeked.stdout)["messages"]
        assert message["size"] == len(PAYLOADS[number % len(PAYLOADS)])
        assert message["headers"] == {"nested": {"list": [1, {"deep": [True, "x", -7]}]}}
        assert (dry.returncode, json.loads(dry.stdout)["ready"]) == (0, 1), queue
        channel.queue_delete(queue)


def test_hostile_payloads_stay_text_on_the_tenant_page(channel, unique, console):
    exchange = unique("tenants")
    queue = tenant_with_messages(channel, exchange, "acme", unique("acme"), 0)
    for payload in PAYLOADS:
        channel.basic_publish(exchange, "acme", payload, mandatory=True)
    app = console({"tenant": "acme"}, page="pages/tenant.py", WARREN_TENANT_EXCHANGE=exchange)

    app.number_input[0].set_value(len(PAYLOADS))
    app.button(key=f"FormSubmitter:peek-{queue}-Peek").click().run()

    assert not app.exception
    assert len(message_labels(app)) == len(PAYLOADS)
    kinds = [label.split(" · ")[2] for label in message_labels(app)]
    assert kinds == ["binary", "binary", "text", "text", "text", "text", "text"]
    for markdown in app.markdown:
        assert "<script" not in markdown.value and "<img" not in markdown.value
