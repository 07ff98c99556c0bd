"""Talking to the broker: the management API client, AMQP, the metrics endpoint, the shapes of
their answers, what differs between versions, and the per-user Session that holds them."""
