"""AMQP 0-9-1 connections (pika) made from Warren's settings, and the broker's refusals on them
as sentences."""

import contextlib
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pika
import pika.exceptions

from dashboard.errors import BrokerError, BrokerUnreachable, Forbidden, NotFound, Unauthorized
from dashboard.settings import Settings

T = TypeVar("T")


def connection_parameters(settings: Settings, name: str) -> list[pika.URLParameters]:
    """Parameters for each node's AMQP URL, in order; WARREN_USERNAME/PASSWORD unless the URL
    carries a user, and always WARREN_VHOST (or --vhost): AMQP works in the vhost the
    management API reads, whatever path the URL has.

    `name` is the client-given connection name the broker shows, so operators see who is connected.
    """
    return [_parameters(url, settings, name) for url in settings.amqp_urls()]


def _parameters(url: str, settings: Settings, name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    if not urlsplit(url).username:
        params.credentials = pika.PlainCredentials(
            settings.username, settings.password.get_secret_value()
        )
    params.virtual_host = settings.vhost
    params.client_properties = {"connection_name": name, "product": "warren"}
    return params


def connect(settings: Settings, name: str) -> pika.BlockingConnection:
    """A connection to the first node that accepts one."""
    shown = settings.display_amqp_url()
    try:
        return pika.BlockingConnection(connection_parameters(settings, name))
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError):
        raise Unauthorized(f"The broker at {shown} refused the AMQP login.") from None
    except pika.exceptions.ProbableAccessDeniedError as exc:
        raise Forbidden(
            f"The broker at {shown} refused access to vhost {settings.vhost!r} (AMQP)"
            f"{_in_its_words(exc)}."
        ) from None
    except pika.exceptions.AMQPConnectionError:
        raise BrokerUnreachable(f"Cannot open an AMQP connection to {shown}.") from None


def _in_its_words(exc: Exception) -> str:
    # pika keeps the broker's reason only inside the text of the error it wraps.
    words = re.search(r"NOT_ALLOWED - ([^\"]+)", " ".join(map(str, exc.args)))
    return f": {words.group(1)}" if words else ""


def close_quietly(connection) -> None:
    """Close a connection (or channel) that the broker may already have closed, or that is gone
    with it."""
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection.close()


def on_new_channel(
    connection: pika.BlockingConnection, action: Callable[[Any], T], refused: str
) -> T:
    """`action` on a new channel of `connection`, closed afterwards. A broker refusal closes
    only that channel; it becomes the sentence `refused` with the broker's words (a missing
    queue: NotFound)."""
    channel = connection.channel()
    try:
        return action(channel)
    except pika.exceptions.ChannelClosedByBroker as exc:
        error = NotFound if exc.reply_code == 404 else BrokerError
        raise error(f"{refused}: {exc.reply_text}.") from None
    finally:
        close_quietly(channel)
