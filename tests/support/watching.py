"""`warren watch` as a real process for the tests, and what sits around it in production: an
HTTP receiver of alert posts, Prometheus evaluating the shipped rules, and Alertmanager."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.local.rabbitmq import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "prometheus" / "warren-rules.yml"


class WatchProcess:
    """`python -m dashboard watch` on a free port, stopped with SIGTERM."""

    def __init__(self, environment: dict[str, str], base: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = base / f"watch-{self.port}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "watch", "--port", str(self.port), *args],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        _wait_for(f"{self.url}/healthz", self.log, self.process)

    def series(self, name: str, **labels: str) -> list:
        """The samples of `name` whose labels include `labels`, as scraped now."""
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        return [
            sample
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]

    def value(self, name: str, **labels: str) -> float | None:
        found = self.series(name, **labels)
        assert len(found) <= 1, found
        return found[0].value if found else None

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class AlertReceiver:
    """A webhook receiver: keeps each post's JSON; answers 500 to the first `failures`."""

    def __init__(self, failures: int = 0):
        self.posts: list[dict] = []
        self.failed = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.failed < failures:
                    receiver.failed += 1
                    self.send_response(500)
                else:
                    receiver.posts.append({"at": time.monotonic(), **json.loads(body)})
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str, **labels: str) -> list[dict]:
        """Each alert received with `status` whose labels include `labels`."""
        return [
            alert
            for post in self.posts
            for alert in post["alerts"]
            if alert["status"] == status and labels.items() <= alert["labels"].items()
        ]

    def close(self) -> None:
        self.server.shutdown()


def _wait_for(url: str, log: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} ended:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{url} did not answer:\n{log.read_text()}")


def _daemon(program: str, args: list[str], base: Path, ready: str) -> subprocess.Popen:
    log = base / f"{program}.log"
    process = subprocess.Popen(
        [shutil.which(program) or f"/usr/bin/{program}", *args],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ},
    )
    _wait_for(ready, log, process)
    return process


def start_alertmanager(base: Path, receiver: AlertReceiver) -> tuple[subprocess.Popen, str]:
    """Debian's Alertmanager, alone (no cluster), posting every group to `receiver` at once."""
    port = free_port()
    (base / "alertmanager.yml").write_text(
        f"""route:
  receiver: test
  group_by: [alertname, tenant, pod, node]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: {receiver.url}
        send_resolved: true
"""
    )
    url = f"http://127.0.0.1:{port}"
    process = _daemon(
        "prometheus-alertmanager",
        [
            f"--config.file={base / 'alertmanager.yml'}",
            f"--storage.path={base / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        base,
        f"{url}/-/ready",
    )
    return process, url


def start_prometheus(
    base: Path, watch: WatchProcess, alertmanager_url: str
) -> tuple[subprocess.Popen, str]:
    """Debian's Prometheus scraping `watch` every second and evaluating the shipped rules, with
    every `for:` cut to 1 s (the expressions and annotations are the shipped ones)."""
    rules = base / "rules.yml"
    rules.write_text(re.sub(r"^(\s+for:) \w+$", r"\1 1s", RULES.read_text(), flags=re.MULTILINE))
    port = free_port()
    (base / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [{rules}]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{alertmanager_url.removeprefix("http://")}"]
scrape_configs:
  - job_name: warren
    static_configs:
      - targets: ["127.0.0.1:{watch.port}"]
"""
    )
    url = f"http://127.0.0.1:{port}"
    process = _daemon(
        "prometheus",
        [
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
        ],
        base,
        f"{url}/-/ready",
    )
    return process, url
