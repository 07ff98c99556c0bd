"""The mover on a real broker: exact counts, properties kept, and nothing lost when the target
refuses, cannot be routed to, or the mover is killed."""

import threading

import pika

from dashboard.actions.mover import MAX_WINDOW, Mover, to_queue, window_for
from dashboard.local.rabbitmq import free_port
from tests.support.helpers import declare, drain, fill, ready_count


def test_move_keeps_every_property_and_counts_exactly(session_for, settings_for, channel, unique):
    source, target = unique("src"), unique("dst")
    declare(channel, source, target, **{"x-max-priority": 10})
    fill(channel, source, 500, priority=4, content_type="text/plain", correlation_id="c-1")

    result = Mover(session_for(), source, to_queue(target), limit=500, window=100).run()

    assert (result.moved, result.failed, result.delivered, result.skipped) == (500, 0, 500, 0)
    assert ready_count(settings_for(), source) == 0
    moved = drain(channel, target)
    assert [body for body, _ in moved] == [f"m-{n}".encode() for n in range(500)]
    _, first = moved[0]
    assert (first.priority, first.content_type, first.correlation_id, first.message_id) == (
        4,
        "text/plain",
        "c-1",
        "m-0",
    )
    assert first.headers == {"n": 0}
    assert first.delivery_mode == 2


def test_limit_moves_that_many_and_leaves_the_rest(session_for, settings_for, channel, unique):
    source, target = unique("src"), unique("dst")
    declare(channel, source, target)
    fill(channel, source, 50)

    result = Mover(session_for(), source, to_queue(target), limit=10, window=4).run()

    assert (result.moved, result.failed) == (10, 0)
    assert (ready_count(settings_for(), source), ready_count(settings_for(), target)) == (40, 10)


def test_unroutable_target_stops_and_loses_nothing(session_for, settings_for, channel, unique):
    source = unique("src")
    declare(channel, source)
    fill(channel, source, 30)

    result = Mover(session_for(), source, to_queue(unique("missing")), limit=30, window=10).run()

    assert result.moved == 0
    assert result.stopped == "a copy could not be routed to its target (returned)"
    assert result.failed == result.delivered
    assert ready_count(settings_for(), source) == 30


def test_full_target_refuses_and_the_rest_stays_in_the_source(
    session_for, settings_for, channel, unique
):
    source, target = unique("src"), unique("dst")
    declare(channel, source)
    channel.queue_declare(
        target, durable=True, arguments={"x-max-length": 5, "x-overflow": "reject-publish"}
    )
    fill(channel, source, 40)

    result = Mover(session_for(), source, to_queue(target), limit=40, window=1).run()

    assert result.stopped == "the broker refused a copy (nack)"
    assert result.moved == 5
    in_source = ready_count(settings_for(), source)
    assert (in_source, ready_count(settings_for(), target)) == (35, 5)
    ids = {body for body, _ in drain(channel, source)} | {
        body for body, _ in drain(channel, target)
    }
    assert ids == {f"m-{n}".encode() for n in range(40)}


def test_a_target_full_mid_window_keeps_what_it_confirmed_and_duplicates_nothing(
    session_for, settings_for, channel, unique
):
    source, target = unique("src"), unique("dst")
    declare(channel, source)
    channel.queue_declare(
        target, durable=True, arguments={"x-max-length": 800, "x-overflow": "reject-publish"}
    )
    fill(channel, source, 2000)

    # The default window: hundreds of copies in flight when the first is refused.
    result = Mover(session_for(), source, to_queue(target), limit=2000).run()

    assert result.stopped == "the broker refused a copy (nack)"
    # Sent back: the originals the mover held when the first copy was refused, as many as its
    # window had taken by then (all 1,200, unless the machine is loaded); the rest never left.
    assert (result.moved, result.may_be_duplicated) == (800, 0)
    assert 0 < result.failed <= 1200
    in_source = {properties.message_id for _, properties in drain(channel, source)}
    in_target = {properties.message_id for _, properties in drain(channel, target)}
    assert (len(in_source), len(in_target)) == (1200, 800)
    assert in_source | in_target == {f"m-{n}" for n in range(2000)}
    assert not in_source & in_target


def test_cancel_stops_with_exact_counts(session_for, settings_for, channel, unique):
    source, target = unique("src"), unique("dst")
    declare(channel, source, target)
    fill(channel, source, 200)
    cancel = threading.Event()

    def stop_after_some(result) -> None:
        if result.moved >= 20:
            cancel.set()

    result = Mover(
        session_for(),
        source,
        to_queue(target),
        limit=200,
        window=5,
        rate=100,
        progress=stop_after_some,
        cancel=cancel,
    ).run()

    assert result.stopped == "cancelled"
    assert 20 <= result.moved < 200
    assert ready_count(settings_for(), source) == 200 - result.moved
    assert ready_count(settings_for(), target) == result.moved


def test_the_window_holds_about_16_mib_of_the_largest_message_seen():
    assert window_for(512) == MAX_WINDOW
    assert window_for(1024 * 1024) == 16
    assert window_for(64 * 1024 * 1024) == 1
    assert window_for(0, most=7) == 7


def test_bodies_of_every_size_arrive_byte_for_byte(session_for, channel, unique):
    """Empty, tiny, exactly one frame, just over one frame and many frames (frame_max 128 KiB)."""
    source, target = unique("src"), unique("dst")
    declare(channel, source, target)
    frame = 131072 - 8
    sizes = [0, 1, frame - 1, frame, frame + 1, 5 * frame + 17, 3 * 1024 * 1024]
    bodies = [bytes([size % 251]) * size for size in sizes]
    for number, body in enumerate(bodies):
        properties = pika.BasicProperties(delivery_mode=2, headers={"n": number}, priority=number)
        channel.basic_publish("", source, body, properties, mandatory=True)

    result = Mover(session_for(), source, to_queue(target), limit=len(bodies)).run()

    assert (result.moved, result.failed) == (len(bodies), 0)
    moved = drain(channel, target)
    assert [body for body, _ in moved] == bodies
    assert [(p.headers, p.priority) for _, p in moved] == [
        ({"n": n}, n) for n in range(len(bodies))
    ]


def test_with_several_nodes_it_moves_through_the_first_that_answers(
    session_for, broker, channel, unique
):
    source, target = unique("src"), unique("dst")
    declare(channel, source, target)
    fill(channel, source, 30)
    stopped = f"amqp://127.0.0.1:{free_port()}/%2F"
    session = session_for(amqp_url=f"{stopped},{broker.amqp_url}")

    result = Mover(session, source, to_queue(target), limit=30).run()

    assert (result.moved, ready_count(session.settings, target)) == (30, 30)
