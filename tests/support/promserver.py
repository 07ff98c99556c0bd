"""A disposable Prometheus server (Debian's `prometheus`) scraping the test broker's detailed
queue metrics every second, on a free loopback port."""

import shutil
import subprocess
import time
from pathlib import Path

import requests

from dashboard.local.rabbitmq import LocalBroker, free_port

CONFIG = """global:
  scrape_interval: 1s
scrape_configs:
  - job_name: rabbitmq
    metrics_path: /metrics/detailed
    params:
      family: [queue_coarse_metrics]
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


class PrometheusServer:
    def __init__(self, broker: LocalBroker, base: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (base / "prometheus.yml").write_text(CONFIG.format(port=broker.prometheus_port))
        self.process = subprocess.Popen(
            [
                shutil.which("prometheus") or "/usr/bin/prometheus",
                f"--config.file={base / 'prometheus.yml'}",
                f"--storage.tsdb.path={base / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(base / "prometheus.log").open("wb"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not start:\n{(base / 'prometheus.log').read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
