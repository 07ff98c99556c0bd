"""What differs between the RabbitMQ versions Warren supports (3.10 to 4.x), in one place.

Each difference is named where it matters to the person on call: the delivery limit a quorum
queue has without one set, and how a quorum queue treats priorities.
"""

from typing import NamedTuple


class BrokerVersion(NamedTuple):
    major: int
    minor: int
    text: str

    @classmethod
    def parse(cls, text: str) -> "BrokerVersion":
        """`4.0.5` -> (4, 0); an unreadable version counts as the oldest supported, 3.10."""
        parts = text.split(".")
        try:
            return cls(int(parts[0]), int(parts[1]), text)
        except (IndexError, ValueError):
            return cls(3, 10, text or "unknown")

    @property
    def quorum_delivery_limit(self) -> int | None:
        """A quorum queue's delivery limit when neither an argument nor a policy sets one: from
        4.0 it is 20, before it there is none."""
        return 20 if self.major >= 4 else None

    @property
    def quorum_priorities(self) -> str:
        """How a quorum queue treats a message's priority."""
        if self.major >= 4:
            return "two levels: priorities 5 and above go before those below 5"
        return "none: it ignores priorities"

    @property
    def per_queue_consumer_timeout(self) -> bool:
        """Whether a queue's `x-consumer-timeout` argument or `consumer-timeout` policy key
        counts: from 3.12; before, only the broker-wide setting does."""
        return (self.major, self.minor) >= (3, 12)
