"""`warren watch`: the long-running watcher, until SIGTERM or Ctrl-C."""

import argparse
import contextlib
import signal
import sys
import threading

from dashboard.actions.audit import AuditLog, audit_log
from dashboard.broker.session import Session
from dashboard.cli.reads import settings_of
from dashboard.errors import WarrenError
from dashboard.reads.history import open_history
from dashboard.watch.watcher import Watcher, serve
from dashboard.watch.webhook import Webhook


def watch(args: argparse.Namespace) -> int:
    vhosts = args.vhost or [None]
    every = [
        settings_of(argparse.Namespace(vhost=vhost, exchange=args.exchange)) for vhost in vhosts
    ]
    settings = every[0]
    address = args.address or settings.watch_address
    port = settings.watch_port if args.port is None else args.port
    webhook_url = args.webhook or settings.webhook_url
    webhook = Webhook(webhook_url, settings.console_url) if webhook_url else None
    with contextlib.ExitStack() as sessions:
        watched = [sessions.enter_context(Session(each)) for each in every]
        watcher = Watcher(watched, open_history(settings), webhook)
        try:
            server = serve(watcher, address, port)
        except OSError as exc:
            problem = f"Cannot serve metrics on {address}:{port}: {exc.strerror}."
            raise WarrenError(problem) from None
        print(
            f"warren watch: metrics at http://{address}:{server.server_port}/metrics, polling "
            f"{settings.management_url} (vhost {', '.join(each.vhost for each in every)}) every "
            f"{settings.refresh_seconds:g} s"
            + (f", alerts posted to {webhook_url}" if webhook_url else ""),
            file=sys.stderr,
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        noticing = (audit_log(settings), stop)
        threading.Thread(target=_notice_interrupted, args=noticing, daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            watcher.run(stop)
        server.shutdown()
        if webhook is not None:
            webhook.flush(5)
    return 0


# How often the watcher looks for actions whose process died.
NOTICE_SECONDS = 30


def _notice_interrupted(log: AuditLog, stop: threading.Event) -> None:
    """Marks the actions whose process died (a console killed mid-move, on any host) as
    interrupted: a team's watcher notices them when no console starts or shows the audit log."""
    while True:
        log.mark_interrupted()
        if stop.wait(NOTICE_SECONDS):
            return
