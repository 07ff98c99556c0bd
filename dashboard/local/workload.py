"""A workload that behaves like the seed's platform, for the demo and the tests.

Tenant queues on a direct exchange (routing key = tenant id), priority queues with a per-tenant
dead-letter queue; a producer with priorities; worker pods whose jobs take 1 to 30 "minutes"
(scaled to 0.1 to 3 s) under a prefetch window, some failing (dead-lettered), some pods dying
mid-job (their unacked go back to ready), and one pod that hangs holding its messages.
Deterministic from a seed: the same seed gives the same tenants, backlog and job sequence.
"""

import logging
import random
import threading
from dataclasses import dataclass, field

import pika
import pika.exceptions

from dashboard.actions.bind import TenantSpec, dead_letter_exchange, tenant_queue
from dashboard.broker.amqp import close_quietly, connect
from dashboard.errors import WarrenError
from dashboard.settings import Settings

log = logging.getLogger(__name__)

DEMO_TENANTS = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell",
    "cyberdyne", "soylent", "wonka", "oscorp", "massive-dynamic", "aperture", "vandelay",
    "gringotts", "monarch", "duff", "krusty", "nakatomi",
)  # fmt: skip
MAX_PRIORITY = 10
SECONDS_PER_JOB_MINUTE = 0.1


def demo_tenants(count: int) -> list[str]:
    """`count` tenant ids: the named ones first, then tenant-021, tenant-022, ..."""
    extra = [f"tenant-{number:03d}" for number in range(len(DEMO_TENANTS) + 1, count + 1)]
    return [*DEMO_TENANTS, *extra][: max(1, count)]


def declare_tenant(
    channel,
    exchange: str,
    tenant: str,
    queue: str | None = None,
    max_priority: int = MAX_PRIORITY,
    dead_letters: bool = True,
) -> str:
    """Declare `tenant`'s queue as onboarding would (a priority queue bound with routing key =
    tenant id and, with `dead_letters`, its dead-letter queue `<queue>.dlq` on `<exchange>.dlx`),
    in one channel and without onboarding's checks, so that tests may also use tenant ids and
    queue names that onboarding would refuse."""
    spec = TenantSpec.model_construct(
        tenant=tenant, max_priority=max_priority, dead_letters=dead_letters
    )
    queue = queue or spec.queue
    channel.exchange_declare(exchange, "direct", durable=True)
    if dead_letters:
        dlx = dead_letter_exchange(exchange)
        channel.exchange_declare(dlx, "direct", durable=True)
        channel.queue_declare(f"{queue}.dlq", durable=True)
        channel.queue_bind(f"{queue}.dlq", dlx, routing_key=tenant)
    channel.queue_declare(queue, durable=True, arguments=spec.queue_arguments(exchange))
    channel.queue_bind(queue, exchange, routing_key=tenant)
    return queue


def publish_jobs(channel, exchange: str, tenant: str, count: int, rng: random.Random) -> None:
    """Publish `count` persistent jobs, mandatory-routed (confirms when the channel has them)."""
    for _ in range(count):
        minutes = rng.randint(1, 30)
        body = (
            f'{{"tenant": "{tenant}", "job": "{rng.getrandbits(48):012x}", "minutes": {minutes}}}'
        )
        channel.basic_publish(
            exchange,
            tenant,
            body.encode(),
            pika.BasicProperties(
                delivery_mode=2,
                priority=rng.choice((0, 0, 0, 5, 9)),
                content_type="application/json",
                headers={"x-job-minutes": minutes},
            ),
            mandatory=True,
        )


@dataclass
class Workload:
    """Seeds tenants with a backlog, then runs a producer and worker pods until stopped.

    The first tenants (one per worker, at most half) have workers; the rest build up a backlog
    with no consumer,
    but for the first of them, whose only consumer is `pod-hung`: it takes its prefetch and
    never acks, a stuck worker. Jobs fail at
    `failure_rate` (`flaky` tenant: five times as often) and are dead-lettered.
    """

    settings: Settings
    tenants: list[str]
    seed: int = 7
    workers: int = 4
    publish_per_second: float = 4.0
    failure_rate: float = 0.05
    # Each worker pod dies (closes its connection mid-job) after about this many jobs.
    jobs_per_life: int = 25
    backlog: tuple[int, int] = (0, 60)
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def served(self) -> list[str]:
        """The tenants with worker pods: one pod each, up to half the tenants."""
        return self.tenants[: max(1, min(self.workers, len(self.tenants) // 2))]

    @property
    def flaky(self) -> str:
        return self.served[-1]

    @property
    def hung(self) -> str:
        """The tenant whose only consumer is the hung pod (the first tenant without workers)."""
        unserved = self.tenants[len(self.served) :]
        return unserved[0] if unserved else self.served[0]

    def seed_backlog(self) -> None:
        rng = random.Random(self.seed)
        connection = connect(self.settings, "warren-demo-seeder")
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for tenant in self.tenants:
                declare_tenant(channel, self.settings.tenant_exchange, tenant)
                count = rng.randint(*self.backlog)
                publish_jobs(channel, self.settings.tenant_exchange, tenant, count, rng)
        finally:
            connection.close()

    def start(self) -> None:
        for number in range(self.workers):
            tenant = self.served[number % len(self.served)]
            self._spawn(self._work, f"pod-worker-{number}", tenant, self.seed + number)
        self._spawn(self._hang, "pod-hung", self.hung, self.seed)
        self._spawn(self._produce, "pod-producer", "", self.seed)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _spawn(self, target, name: str, tenant: str, seed: int) -> None:
        thread = threading.Thread(
            target=self._guarded, args=(target, name, tenant, seed), name=name, daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def _guarded(self, target, name: str, tenant: str, seed: int) -> None:
        """Runs a pod; a broker that goes away ends it with a log line, not a traceback."""
        try:
            target(name, tenant, seed)
        except (pika.exceptions.AMQPError, WarrenError) as exc:
            if not self.stop_event.is_set():
                log.warning("%s stopped: %s", name, exc or type(exc).__name__)

    def _produce(self, name: str, _tenant: str, seed: int) -> None:
        rng = random.Random(seed)
        connection = connect(self.settings, name)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            while not self.stop_event.is_set():
                tenant = rng.choice(self.tenants)
                publish_jobs(channel, self.settings.tenant_exchange, tenant, 1, rng)
                connection.sleep(rng.expovariate(self.publish_per_second))
        finally:
            close_quietly(connection)

    def _work(self, name: str, tenant: str, seed: int) -> None:
        """A pod's lives: each takes jobs under prefetch 2 and dies mid-job, then it restarts."""
        rng = random.Random(seed)
        life = 0
        while not self.stop_event.is_set():
            life += 1
            self._live(f"{name}-{life}", tenant, rng)
            self.stop_event.wait(rng.uniform(0.5, 2.0))  # the pod restarting

    def _live(self, name: str, tenant: str, rng: random.Random) -> None:
        failure_rate = self.failure_rate * (5 if tenant == self.flaky else 1)
        jobs_left = rng.randint(self.jobs_per_life // 2, self.jobs_per_life * 3 // 2)
        connection = connect(self.settings, name)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=2)
            queue = tenant_queue(tenant)
            for method, _, _ in channel.consume(queue, inactivity_timeout=0.5):
                if self.stop_event.is_set() or jobs_left == 0:
                    return  # dies holding what it has: the broker requeues it
                if method is None:
                    continue
                jobs_left -= 1
                connection.sleep(rng.randint(1, 30) * SECONDS_PER_JOB_MINUTE)
                if rng.random() < failure_rate:
                    channel.basic_reject(method.delivery_tag, requeue=False)
                else:
                    channel.basic_ack(method.delivery_tag)
        finally:
            close_quietly(connection)

    def _hang(self, name: str, tenant: str, _seed: int) -> None:
        connection = connect(self.settings, name)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=3)
            channel.basic_consume(tenant_queue(tenant), lambda *_: None)
            while not self.stop_event.is_set():
                connection.process_data_events(time_limit=0.5)
        finally:
            close_quietly(connection)
