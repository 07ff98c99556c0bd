"""The consumer timeout in force for a queue: the broker closes a channel that holds one of its
deliveries unacked for longer (with a 406), and the messages go back to ready. The seed
platform's 20 to 30 minute jobs sit right at the default of 30 minutes.

Broker-wide it is `consumer_timeout` in rabbitmq.conf, which the management API does not show
(WARREN_CONSUMER_TIMEOUT_SECONDS says it, unset: the broker's default). From 3.12 a queue's
`x-consumer-timeout` argument or `consumer-timeout` policy key wins for that queue.
"""

from pydantic import BaseModel

from dashboard.broker.models import QueueInfo, parse_all
from dashboard.broker.session import Session
from dashboard.broker.versions import BrokerVersion
from dashboard.reads.silence import MOST_QUEUES_SAMPLED
from dashboard.settings import Settings

ARGUMENT = "x-consumer-timeout"


class Timeout(BaseModel):
    seconds: float
    # Where it comes from, as the tenant page says it.
    source: str


def timeout_of(info: QueueInfo, version: BrokerVersion, settings: Settings) -> Timeout:
    value = info.effective_arguments.get(ARGUMENT)
    counts = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if counts and version.per_queue_consumer_timeout:
        source = "the queue's argument" if ARGUMENT in info.arguments else "its policy"
        return Timeout(seconds=value / 1000, source=source)
    source = (
        "WARREN_CONSUMER_TIMEOUT_SECONDS"
        if settings.consumer_timeout_seconds
        else f"the broker's default for {version.text}"
    )
    if counts:
        source += " (the queue's own is ignored before 3.12)"
    return Timeout(seconds=settings.consumer_timeout, source=source)


def queue_timeout(session: Session, info: QueueInfo) -> Timeout:
    return timeout_of(info, session.broker_version(), session.settings)


def held_queue_timeouts(session: Session, queues: list[str]) -> dict[str, float]:
    """The timeouts of queues that set their own (3.12 and later), for the first
    MOST_QUEUES_SAMPLED of `queues`; the others have the broker-wide one."""
    version = session.broker_version()
    if not version.per_queue_consumer_timeout:
        return {}
    columns = {"columns": "name,vhost,arguments,effective_policy_definition"}
    timeouts = {}
    for queue in queues[:MOST_QUEUES_SAMPLED]:
        raw = session.client.get_queue(session.vhost, queue, columns)
        [info] = parse_all(QueueInfo, [raw], f"the arguments of queue {queue!r}")
        timeouts[queue] = timeout_of(info, version, session.settings).seconds
    return timeouts
