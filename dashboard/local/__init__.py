"""Local tooling, not the product: a disposable RabbitMQ node or cluster, the demo's workload and
the demo. Only the CLI's `demo` verb and the tests import it."""
