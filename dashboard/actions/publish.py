"""Publish an exported file (JSON lines, as `warren export` writes them) into a queue or the
tenant exchange: a replay after a fix. Each message is published `mandatory` and counted only
once the broker confirmed it; the first refusal (unroutable, nack) stops the run, and the result
says which line to resume from. At least once: a run cut short and run again from its start
publishes the confirmed ones twice; `--skip` resumes past them.
"""

import base64
import json
import time
from pathlib import Path

import pika
import pika.exceptions
from pydantic import BaseModel, ValidationError

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.actions.target_rules import Arrival, arrival, loss_sentence, queue_rules, refuse_loss
from dashboard.broker.amqp import close_quietly, connect
from dashboard.broker.session import Session
from dashboard.errors import WarrenError

# Past this, a body is refused before anything is published (the broker's own default limit
# is 128 MiB on 3.10 and 16 MiB on 4.0: the broker would close the channel).
BODY_MOST = 16 * 1024 * 1024


class ExportedMessage(BaseModel):
    routing_key: str = ""
    properties: dict = {}
    body: str | None = None
    body_base64: str | None = None


class PublishPlan(BaseModel):
    path: str
    messages: list[ExportedMessage]
    skip: int = 0
    # A queue (through the default exchange), or the tenant exchange with `routing_key`
    # (None: each message's own).
    to_queue: str | None
    exchange: str = ""
    routing_key: str | None = None
    rate: float | None = None
    arrivals: list[Arrival] = []

    @property
    def publishing(self) -> int:
        return max(0, len(self.messages) - self.skip)

    @property
    def loses(self) -> int:
        return sum(into.lost for into in self.arrivals)

    @property
    def target(self) -> str:
        if self.to_queue is not None:
            return self.to_queue
        key = f"routing key {self.routing_key!r}" if self.routing_key else "its own routing key"
        return f"exchange {self.exchange!r} with {key}"

    @property
    def sentence(self) -> str:
        skipped = f", after skipping the first {self.skip:,}" if self.skip else ""
        rate = f", at most {self.rate:g} a second" if self.rate else ""
        said = [
            f"Publish {count(self.publishing, 'message')} of {self.path}{skipped} to "
            f"{self.target}{rate}, each counted once the broker confirmed it.",
            *(into.sentence for into in self.arrivals if into.sentence),
        ]
        return " ".join(said + ([loss_sentence(self.loses)] if self.loses else []))

    def parameters(self, vhost: str) -> dict:
        given = {"skip": self.skip or None, "rate": self.rate, "routing_key": self.routing_key}
        return {
            "vhost": vhost,
            "file": self.path,
            "to": self.target,
            "lines": len(self.messages),
        } | {key: value for key, value in given.items() if value is not None}


class Published(BaseModel):
    published: int
    # The line to resume from (`--skip`) when the run stopped short; None when it did not.
    resume_skip: int | None = None
    stopped: str | None = None
    ready_after: dict[str, int] = {}


def read_export(path: str) -> str:
    """An export file's text, or the sentence why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WarrenError(f"Cannot read {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise WarrenError(f"{path} is not UTF-8 text: an export is JSON lines.") from None


def parse_export(name: str, text: str) -> list[ExportedMessage]:
    """Every line of the export `name`, checked before anything is published: a bad line is
    named."""
    messages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            message = ExportedMessage.model_validate(json.loads(line))
        except (ValueError, ValidationError):
            raise WarrenError(
                f"Line {number} of {name} is not an exported message (a JSON object with "
                "routing_key, properties and body or body_base64): nothing was published."
            ) from None
        if len(body_of(message)) > BODY_MOST:
            raise WarrenError(
                f"Line {number} of {name} has a body over {BODY_MOST:,} bytes: nothing was "
                "published."
            )
        messages.append(message)
    return messages


def plan_publish(
    session: Session,
    name: str,
    text: str,
    to_queue: str | None,
    routing_key: str | None,
    skip: int = 0,
    rate: float | None = None,
) -> PublishPlan:
    """Publishing the export `text` (from file `name`)."""
    messages = parse_export(name, text)
    if not 0 <= skip <= len(messages):
        raise WarrenError(f"--skip takes 0 to {len(messages):,} here; {skip} is out of range.")
    plan = PublishPlan(
        path=name,
        messages=messages,
        skip=skip,
        to_queue=to_queue,
        exchange="" if to_queue else session.exchange,
        routing_key=routing_key,
        rate=rate,
    )
    if to_queue is not None:
        size = sum(len(body_of(message)) for message in messages[skip:])
        rules = queue_rules(session, to_queue)
        plan.arrivals = [arrival(rules, plan.publishing, incoming_bytes=size)]
    return plan


def body_of(message: ExportedMessage) -> bytes:
    if message.body_base64 is not None:
        return base64.b64decode(message.body_base64)
    return (message.body or "").encode()


def amqp_value(value):
    """The inverse of the export's `plain`: {"base64": ...} back to bytes."""
    if isinstance(value, dict):
        if set(value) == {"base64"}:
            return base64.b64decode(value["base64"])
        return {key: amqp_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [amqp_value(item) for item in value]
    return value


def properties_of(message: ExportedMessage) -> pika.BasicProperties:
    known = set(vars(pika.BasicProperties()))
    given = {key: amqp_value(value) for key, value in message.properties.items() if key in known}
    return pika.BasicProperties(**given)


def publish(session: Session, plan: PublishPlan, actor: str, force: bool = False) -> Published:
    """Run a confirmed plan, audited as `publish`."""
    with change(session, actor, "publish", plan.target, plan.parameters(session.vhost)) as entry:
        refuse_loss(plan.loses, force)
        published = _publish_all(session, plan)
        if plan.to_queue is not None:
            session.changed(plan.to_queue)
            published.ready_after = {plan.to_queue: session.ready_count(plan.to_queue)}
        entry.counts = {"published": published.published} | {
            f"ready:{queue}": ready for queue, ready in published.ready_after.items()
        }
        if published.stopped:
            entry.outcome, entry.error = "stopped", published.stopped
    return published


def _publish_all(session: Session, plan: PublishPlan) -> Published:
    connection = connect(session.settings, f"warren-publish {plan.path}")
    done = Published(published=0)
    started = time.monotonic()
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for message in plan.messages[plan.skip :]:
            if plan.rate:
                time.sleep(max(0.0, started + done.published / plan.rate - time.monotonic()))
            key = plan.to_queue or plan.routing_key or message.routing_key
            channel.basic_publish(
                plan.exchange, key, body_of(message), properties_of(message), mandatory=True
            )
            done.published += 1
    except pika.exceptions.UnroutableError:
        done.stopped = f"a message could not be routed to {plan.target} (returned)"
    except pika.exceptions.NackError:
        done.stopped = "the broker refused a message (nack)"
    except pika.exceptions.AMQPError as exc:
        done.stopped = f"the connection failed: {type(exc).__name__}"
    finally:
        close_quietly(connection)
    if done.stopped:
        done.resume_skip = plan.skip + done.published
    return done
