"""A disposable RabbitMQ node in a temp dir on free loopback ports, for the demo and the tests.

It runs Debian's rabbitmq-server as the current user, through the /usr/lib entry point, not
/usr/sbin, which would switch to the rabbitmq user and then fail to write our temp dir.
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from urllib.parse import quote

import requests

from dashboard.broker.management import api_path
from dashboard.errors import WarrenError

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
# Another Debian's root holding its own rabbitmq-server (bin/rabbitmq-root builds one with
# RabbitMQ 4.0): when set, every node runs inside it, through chroot.
_root = os.environ.get("WARREN_RABBITMQ_ROOT")
# Resolved: it is compared with what /proc/PID/root links to.
RABBITMQ_ROOT = os.path.realpath(_root) if _root else None
PLUGINS = "[rabbitmq_management,rabbitmq_shovel,rabbitmq_shovel_management,rabbitmq_prometheus]."
# One-second stats keep the management API close to AMQP truth in tests and the demo.
STATS_INTERVAL_MS = 1000
# Starts on other free ports, where one found free was taken before the node bound it.
PORT_ATTEMPTS = 3
ADVANCED_CONFIG = "advanced.config"
# How often a channel of a node with a short consumer timeout checks its deliveries' age.
CHANNEL_TICK_MS = 1000


class LocalBrokerError(WarrenError):
    """The disposable node could not be started or driven."""


def free_port(preferred: int | None = None) -> int:
    """A TCP port free on 127.0.0.1 right now: the preferred one when it is free."""
    candidates = [preferred, 0] if preferred else [0]
    for candidate in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise LocalBrokerError("no free TCP port on 127.0.0.1")


@dataclass
class LocalBroker:
    base_dir: Path
    node: str
    amqp_port: int
    management_port: int
    dist_port: int
    prometheus_port: int
    process: subprocess.Popen | None = field(default=None, repr=False)
    ready: bool = False
    owns_base_dir: bool = True
    consumer_timeout_ms: int | None = None
    # Whether it ever answered on its ports.
    answered: bool = False
    # Where the last launch's output begins in server.out (the file keeps every launch's).
    launched_at_byte: int = field(default=0, repr=False)

    @classmethod
    def create(
        cls,
        base_dir: Path | None = None,
        default_ports: bool = False,
        consumer_timeout_ms: int | None = None,
    ) -> "LocalBroker":
        """Lay out a node's files; `default_ports` takes 5672/15672 when they are free;
        `consumer_timeout_ms` sets the broker's consumer timeout (its default otherwise)."""
        # A node in another root sees only that root's files: its directory must be there.
        owns = base_dir is None or RABBITMQ_ROOT is not None
        base = (
            Path(tempfile.mkdtemp(prefix="warren-broker-", dir=Path(RABBITMQ_ROOT, "tmp")))
            if RABBITMQ_ROOT
            else Path(base_dir or tempfile.mkdtemp(prefix="warren-broker-"))
        )
        broker = cls(
            base_dir=base,
            node=f"warren-{secrets.token_hex(4)}@localhost",
            amqp_port=free_port(5672 if default_ports else None),
            management_port=free_port(15672 if default_ports else None),
            dist_port=free_port(),
            prometheus_port=free_port(),
            owns_base_dir=owns,
            consumer_timeout_ms=consumer_timeout_ms,
        )
        broker._write_files()
        return broker

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        """RabbitMQ's own Prometheus endpoint (its metrics, not a Prometheus server)."""
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def amqp_url(self) -> str:
        """The default vhost; pika's default user is guest, as is Warren's."""
        return self.amqp_url_for("/")

    def amqp_url_for(self, vhost: str) -> str:
        return f"amqp://127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"

    def _write_files(self) -> None:
        for sub in ("mnesia", "log", "home"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.base_dir / "enabled_plugins").write_text(PLUGINS)
        timeout = []
        if self.consumer_timeout_ms is not None:
            timeout = [f"consumer_timeout = {self.consumer_timeout_ms}"]
            # A channel looks at its deliveries' age only on its tick, once a minute by default:
            # a timeout of seconds would fire up to a minute late. rabbitmq.conf cannot set it.
            (self.base_dir / ADVANCED_CONFIG).write_text(
                f"[{{rabbit, [{{channel_tick_interval, {CHANNEL_TICK_MS}}}]}}].\n"
            )
        (self.base_dir / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    *timeout,
                    f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
                    f"management.tcp.port = {self.management_port}",
                    "management.tcp.ip = 127.0.0.1",
                    f"prometheus.tcp.port = {self.prometheus_port}",
                    "prometheus.tcp.ip = 127.0.0.1",
                    f"collect_statistics_interval = {STATS_INTERVAL_MS}",
                    "management.sample_retention_policies.global.minute = 1",
                    "management.sample_retention_policies.basic.minute = 1",
                    "management.sample_retention_policies.detailed.10 = 1",
                    "log.console = false",
                    "",
                ]
            )
        )

    def env(self) -> dict[str, str]:
        """The node's variables, with paths as the node sees them."""
        base = self.base_dir
        if RABBITMQ_ROOT:
            base = Path("/", base.relative_to(RABBITMQ_ROOT))
        variables = {
            "HOME": str(base / "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        if self.consumer_timeout_ms is not None:
            variables["RABBITMQ_ADVANCED_CONFIG_FILE"] = str(base / ADVANCED_CONFIG)
        return variables

    def _command(self, program: str, *args: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run one of RabbitMQ's programs for this node."""
        argv = [str(RABBITMQ_BIN / program), *args]
        if RABBITMQ_ROOT is None:
            return argv, {**os.environ, **self.env()}
        variables = [f"{name}={value}" for name, value in self.env().items()]
        # A UTF-8 locale, or the root's Erlang reads names such as a vhost's as Latin-1.
        basics = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"]
        chrooted = ["chroot", RABBITMQ_ROOT, "/usr/bin/env", "-i", *basics, *variables, *argv]
        return chrooted, dict(os.environ)

    def start(self, timeout: float = 90) -> "LocalBroker":
        where = Path(RABBITMQ_ROOT or "/", *RABBITMQ_BIN.parts[1:], "rabbitmq-server")
        if not where.exists():
            raise LocalBrokerError(
                f"{where} not found: install it with `apt-get install -y rabbitmq-server`"
                + (", or build the root with bin/rabbitmq-root." if RABBITMQ_ROOT else ".")
            )
        if RABBITMQ_ROOT:
            mount_proc(Path(RABBITMQ_ROOT))
            start_epmd()
        for attempt in count(1):
            self._launch()
            try:
                self.wait_answering(timeout)
            except LocalBrokerError:
                # A port found free was taken before the node bound it (by another suite's
                # node, on a machine running two at once): a node that never answered takes
                # other ports; one that did keeps its own, which its clients know.
                if attempt < PORT_ATTEMPTS and not self.answered and self._port_was_taken():
                    self._kill_group()
                    self._take_free_ports()
                    continue
                self.stop()
                raise
            self.ready = self.answered = True
            return self

    def _launch(self) -> None:
        argv, env = self._command("rabbitmq-server")
        with (self.base_dir / "server.out").open("ab") as log:
            self.launched_at_byte = log.tell()
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _port_was_taken(self) -> bool:
        """Whether this launch (not an earlier one) found a port taken."""
        with (self.base_dir / "server.out").open("rb") as log:
            log.seek(self.launched_at_byte)
            return b"eaddrinuse" in log.read()

    def _take_free_ports(self) -> None:
        self.amqp_port, self.management_port = free_port(), free_port()
        self.dist_port, self.prometheus_port = free_port(), free_port()
        self._write_files()

    def wait_answering(self, timeout: float = 90) -> None:
        """Until the management API answers and the AMQP port takes connections (after a start,
        or a `start_app`): the broker opens its client listeners last, after its plugins."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalBrokerError(f"rabbitmq-server exited early:\n{self.log_tail()}")
            if self._management_answers() and self._amqp_listens():
                return
            time.sleep(0.25)
        raise LocalBrokerError(f"rabbitmq-server did not answer within {timeout:.0f} s")

    def _management_answers(self) -> bool:
        try:
            answer = requests.get(
                self.management_url + api_path("overview"), auth=("guest", "guest"), timeout=2
            )
        except requests.RequestException:
            return False
        return answer.status_code == 200

    def _amqp_listens(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.amqp_port), timeout=2).close()
        except OSError:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        text = (self.base_dir / "server.out").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run rabbitmqctl against this node; its output, or LocalBrokerError.

        rabbitmqctl is a script that starts an Erlang VM of its own: on a timeout its whole
        process group goes, not just the script.
        """
        argv, env = self._command("rabbitmqctl", "-n", self.node, *args)
        command = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = command.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(command.pid, signal.SIGKILL)
            command.communicate()
            raise LocalBrokerError(f"rabbitmqctl {' '.join(args)} timed out") from None
        if command.returncode != 0:
            raise LocalBrokerError(f"rabbitmqctl {' '.join(args)}: {err.strip()}")
        return out

    def stop(self) -> None:
        """Stop the node and everything it started, and remove its files when we made them."""
        # A node still booting cannot be asked to stop: it is killed instead.
        if self.ready and self.process and self.process.poll() is None:
            try:
                self.ctl("stop", timeout=30)
                self.process.wait(timeout=30)
            except (LocalBrokerError, subprocess.TimeoutExpired):
                self._kill_group()
        self._kill_group()
        stop_idle_epmd()
        if RABBITMQ_ROOT:
            unmount_idle_proc(Path(RABBITMQ_ROOT))
        if self.owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the node, as a crash would: its files stay, and `start` brings it back."""
        self._kill_group()
        self.ready = False

    def _kill_group(self) -> None:
        """Whatever the node left in its session (erl_child_setup, inet_gethost) goes too."""
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait()
        self.process = None
        # SIGKILL is delivered, not awaited: the rest of the group may take a moment to go.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalCluster:
    """Nodes on one machine joined into one cluster: the first is the seed, the
    others `join_cluster` it. They share one Erlang cookie, as cluster nodes must."""

    def __init__(self, size: int = 3):
        self.nodes = [LocalBroker.create() for _ in range(size)]
        cookie = secrets.token_hex(20)
        for node in self.nodes:
            path = node.base_dir / "home" / ".erlang.cookie"
            path.write_text(cookie)
            path.chmod(0o600)

    @property
    def management_url(self) -> str:
        """Every node's management URL, comma-separated, as WARREN_MANAGEMENT_URL takes them."""
        return ",".join(node.management_url for node in self.nodes)

    @property
    def amqp_url(self) -> str:
        return ",".join(node.amqp_url for node in self.nodes)

    def start(self) -> "LocalCluster":
        starting = [threading.Thread(target=node.start) for node in self.nodes]
        try:
            for thread in starting:
                thread.start()
            for thread in starting:
                thread.join()
            if not all(node.ready for node in self.nodes):
                raise LocalBrokerError("a cluster node did not start")
            seed = self.nodes[0].node
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", seed)
                node.ctl("start_app")
                node.wait_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def mount_proc(root: Path) -> None:
    """RabbitMQ in another root needs /proc there."""
    if not os.path.ismount(root / "proc"):
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)


def unmount_idle_proc(root: Path, wait: float = 5) -> None:
    """Unmount the root's /proc once no process runs in that root any more (waiting a moment
    for the root's epmd, just told to stop, to be gone)."""
    deadline = time.monotonic() + wait
    while _runs_in(root):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    if os.path.ismount(root / "proc"):
        subprocess.run(["umount", str(root / "proc")], check=False)


def _runs_in(root: Path) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/root") == str(root):
                return True
    return False


EPMD_ENV = {**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"}


def start_epmd() -> None:
    """This machine's epmd, unless one runs: a node in another root would otherwise start the
    root's own, which then keeps that root busy (and its /proc mounted) for other nodes."""
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    subprocess.run([epmd, "-daemon"], env=EPMD_ENV, capture_output=True, timeout=10, check=False)


def stop_idle_epmd() -> None:
    """Erlang starts epmd on demand and leaves it behind: stop it when no node is left on it."""
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    try:
        names = subprocess.run(
            [epmd, "-names"], env=EPMD_ENV, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    if names.returncode == 0 and "name " not in names.stdout:
        subprocess.run([epmd, "-kill"], env=EPMD_ENV, capture_output=True, timeout=5)
