"""AMQP 0-9-1 connections (pika) made from Warren's settings."""

import contextlib
from urllib.parse import urlsplit

import pika
import pika.exceptions

from dashboard.errors import BrokerUnreachable, NotFound, Unauthorized
from dashboard.settings import Settings


def connection_parameters(settings: Settings, name: str) -> pika.URLParameters:
    """Parameters for the AMQP URL; WARREN_USERNAME/PASSWORD unless the URL carries a user.

    `name` is the client-given connection name the broker shows, so operators see who is connected.
    """
    url = settings.amqp_url.get_secret_value()
    params = pika.URLParameters(url)
    if not urlsplit(url).username:
        params.credentials = pika.PlainCredentials(
            settings.username, settings.password.get_secret_value()
        )
    params.client_properties = {"connection_name": name, "product": "warren"}
    return params


def connect(settings: Settings, name: str) -> pika.BlockingConnection:
    shown = settings.display_amqp_url()
    try:
        return pika.BlockingConnection(connection_parameters(settings, name))
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError):
        raise Unauthorized(f"The broker at {shown} refused the AMQP login.") from None
    except pika.exceptions.AMQPConnectionError:
        raise BrokerUnreachable(f"Cannot open an AMQP connection to {shown}.") from None


def close_quietly(connection) -> None:
    """Close a connection that the broker may already have closed, or that is gone with it."""
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection.close()


def queue_counts(settings: Settings, queue: str) -> tuple[int, int]:
    """(ready, consumers) of `queue` now, from AMQP: no stats lag. A missing queue is NotFound."""
    connection = connect(settings, "warren-count")
    try:
        method = connection.channel().queue_declare(queue, passive=True).method
        return method.message_count, method.consumer_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise NotFound(f"Queue {queue!r} cannot be read: {exc.reply_text}.") from None
    finally:
        close_quietly(connection)


def ready_count(settings: Settings, queue: str) -> int:
    return queue_counts(settings, queue)[0]
