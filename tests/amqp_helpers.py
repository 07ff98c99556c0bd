"""AMQP set-up for tests: tenants with messages, and consumers that hold messages unacked."""

import pika

from dashboard.amqp import close_quietly
from dashboard.localbroker import LocalBroker
from dashboard.workload import declare_tenant


def publish(channel, exchange: str, routing_key: str, count: int) -> None:
    for number in range(count):
        channel.basic_publish(
            exchange,
            routing_key,
            f"message {number}".encode(),
            pika.BasicProperties(delivery_mode=2),
            mandatory=True,
        )


def tenant_with_messages(channel, exchange: str, tenant: str, queue: str, count: int) -> str:
    declare_tenant(channel, exchange, tenant, queue=queue)
    publish(channel, exchange, tenant, count)
    return queue


def ready_and_consumers(channel, queue: str) -> tuple[int, int]:
    """AMQP's own answer: messages ready and consumers on `queue`, with no stats lag."""
    method = channel.queue_declare(queue, passive=True).method
    return method.message_count, method.consumer_count


class Holder:
    """A pod that takes messages under a prefetch window and never acks them."""

    def __init__(self, broker: LocalBroker, name: str = "holder", vhost: str = "/"):
        params = pika.ConnectionParameters(
            host="127.0.0.1",
            port=broker.amqp_port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials("guest", "guest"),
            client_properties={"connection_name": name},
        )
        self.name = name
        self.connection = pika.BlockingConnection(params)
        self.held: dict[str, int] = {}
        # Per queue, the channel and delivery tags of the messages held, oldest first.
        self.deliveries: dict[str, list] = {}

    def hold(self, queue: str, prefetch: int, expect: int) -> int:
        """Consume `queue` with `prefetch` until `expect` messages are held; returns the count."""
        tag = self.consume(queue, prefetch, expect)
        return self.held[tag]

    def consume(
        self,
        queue: str,
        prefetch: int,
        expect: int,
        tag: str = "",
        auto_ack: bool = False,
        channel=None,
    ) -> str:
        """Start a consumer (on its own channel, unless given one) and wait for `expect`
        deliveries; its tag."""
        channel = channel or self.connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        tag = tag or f"ctag-{channel.channel_number}"
        self.held[tag] = 0

        def keep(channel, method, _properties, _body) -> None:
            self.held[tag] += 1
            self.deliveries.setdefault(queue, []).append((channel, method.delivery_tag))

        channel.basic_consume(queue, keep, auto_ack=auto_ack, consumer_tag=tag)
        for _ in range(100):
            if self.held[tag] >= expect:
                break
            self.connection.process_data_events(time_limit=0.1)
        return tag

    def ack_one(self, queue: str) -> None:
        channel, tag = self.deliveries[queue].pop(0)
        channel.basic_ack(tag)
        self.connection.process_data_events(time_limit=0.1)

    def reject_all(self, queue: str) -> None:
        """Reject without requeue every message held from `queue`: the broker dead-letters them."""
        for channel, tag in self.deliveries.pop(queue, []):
            channel.basic_reject(tag, requeue=False)
        self.connection.process_data_events(time_limit=0.1)

    def close(self) -> None:
        close_quietly(self.connection)
