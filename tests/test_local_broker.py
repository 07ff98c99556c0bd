"""The disposable node the demo and the tests run on (dashboard/local/rabbitmq.py)."""

import socket

import requests

from dashboard.local.rabbitmq import LocalBroker


def test_a_node_whose_port_was_taken_before_it_bound_it_starts_on_others(tmp_path):
    """A port found free may be taken before the node binds it (two suites run at once in CI):
    the node starts on other free ports instead of failing."""
    node = LocalBroker.create(tmp_path / "node")
    taken = node.prometheus_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with node:
            assert node.prometheus_port != taken
            assert requests.get(f"{node.metrics_url}/metrics", timeout=30).status_code == 200
            assert requests.get(node.management_url, timeout=30).status_code == 200
