"""A workload that behaves like the seed's platform: tenant queues on a direct exchange, producers
with priorities, and workers whose jobs take very different times under a prefetch window.

Deterministic from a seed, so the demo and tests see the same tenants and the same backlog.
"""

import random
import threading
from dataclasses import dataclass, field

import pika

from dashboard.amqp import connect
from dashboard.settings import Settings

DEMO_TENANTS = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell",
    "cyberdyne", "soylent", "wonka", "oscorp", "massive-dynamic", "aperture", "vandelay",
    "gringotts", "monarch", "duff", "krusty", "nakatomi",
)  # fmt: skip
MAX_PRIORITY = 10


def tenant_queue(tenant: str) -> str:
    """The demo's queue naming; Warren itself never parses tenant ids out of queue names."""
    return f"tenant.{tenant}"


def declare_tenant(
    channel, exchange: str, tenant: str, queue: str | None = None, max_priority: int = MAX_PRIORITY
) -> str:
    """Declare a durable priority queue for `tenant` and bind it with routing key = tenant id."""
    queue = queue or tenant_queue(tenant)
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.queue_declare(queue, durable=True, arguments={"x-max-priority": max_priority})
    channel.queue_bind(queue, exchange, routing_key=tenant)
    return queue


def publish_jobs(channel, exchange: str, tenant: str, count: int, rng: random.Random) -> None:
    """Publish `count` persistent jobs with mandatory routing and confirms on the channel."""
    for number in range(count):
        body = f'{{"tenant": "{tenant}", "job": {number}, "seconds": {rng.randint(1, 30)}}}'
        channel.basic_publish(
            exchange,
            tenant,
            body.encode(),
            pika.BasicProperties(
                delivery_mode=2,
                priority=rng.choice((0, 0, 0, 5, 9)),
                content_type="application/json",
            ),
            mandatory=True,
        )


@dataclass
class Workload:
    """Seeds tenants with a backlog, then keeps producers and workers running until stopped."""

    settings: Settings
    tenants: list[str]
    seed: int = 7
    workers: int = 4
    publish_per_second: float = 4.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def seed_backlog(self) -> None:
        rng = random.Random(self.seed)
        connection = connect(self.settings, "warren-demo-seeder")
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for tenant in self.tenants:
                declare_tenant(channel, self.settings.tenant_exchange, tenant)
                publish_jobs(
                    channel, self.settings.tenant_exchange, tenant, rng.randint(0, 60), rng
                )
        finally:
            connection.close()

    def start(self) -> None:
        # Workers serve only the first tenants: the rest build up a backlog with no consumer.
        served = self.tenants[: max(1, len(self.tenants) // 2)]
        for number in range(self.workers):
            tenant = served[number % len(served)]
            self._spawn(self._work, f"pod-worker-{number}", tenant, self.seed + number)
        self._spawn(self._produce, "pod-producer", None, self.seed)

    def _spawn(self, target, name: str, tenant: str | None, seed: int) -> None:
        thread = threading.Thread(target=target, args=(name, tenant, seed), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _produce(self, name: str, _tenant: None, seed: int) -> None:
        rng = random.Random(seed)
        connection = connect(self.settings, name)
        channel = connection.channel()
        channel.confirm_delivery()
        while not self.stop_event.is_set():
            tenant = rng.choice(self.tenants)
            publish_jobs(channel, self.settings.tenant_exchange, tenant, 1, rng)
            connection.sleep(rng.expovariate(self.publish_per_second))
        connection.close()

    def _work(self, name: str, tenant: str, seed: int) -> None:
        """A pod: prefetch 2, jobs of 1 to 30 'minutes' scaled to tenths of seconds, then ack."""
        rng = random.Random(seed)
        connection = connect(self.settings, name)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=2)
        for method, _properties, _body in channel.consume(
            tenant_queue(tenant), inactivity_timeout=1
        ):
            if self.stop_event.is_set():
                break
            if method is None:
                continue
            connection.sleep(rng.uniform(0.1, 3.0))
            channel.basic_ack(method.delivery_tag)
        connection.close()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)
