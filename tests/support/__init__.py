"""What the tests share: helpers (one module), and the servers some tests stand beside the broker:
a management API that misbehaves, a TCP proxy that can cut connections, a real Prometheus."""
