"""The console in a real browser (Debian's Chromium, driven by Playwright) on the demo: a second
broker with the demo's workload, and the console served as `warren demo` serves it. Each test
leaves a screenshot in test-artifacts/screenshots (or $WARREN_SCREENSHOTS)."""

import json
import os
import re
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
import requests
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from dashboard.actions.audit import AuditLog
from dashboard.local.demo import broker_env, start_console, stop_console
from dashboard.local.rabbitmq import LocalBroker, free_port
from dashboard.local.workload import Workload, declare_tenant, demo_tenants
from dashboard.settings import ENV_PREFIX, Settings, load_settings
from tests.support.helpers import queue_counts, wait_until

SCREENSHOTS = Path(
    os.environ.get("WARREN_SCREENSHOTS")
    or Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
)
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)


@dataclass
class Demo:
    url: str
    broker: LocalBroker
    settings: Settings
    workload: Workload
    console_pid: int


@pytest.fixture(scope="module")
def demo(second_broker: LocalBroker, tmp_path_factory) -> Demo:
    env = broker_env(second_broker) | {
        "WARREN_REFRESH_SECONDS": "2",
        "WARREN_HISTORY_DB": str(tmp_path_factory.mktemp("browser") / "history.sqlite"),
        "WARREN_AUDIT_DB": str(tmp_path_factory.mktemp("browser") / "audit.sqlite"),
    }
    settings = load_settings(**{key.removeprefix(ENV_PREFIX).lower(): v for key, v in env.items()})
    workload = Workload(settings, demo_tenants(6))
    workload.seed_backlog()
    workload.start()
    port = free_port()
    outside = {name: value for name, value in os.environ.items() if ENV_PREFIX not in name}
    console = start_console(outside | env, port, quiet=True)
    yield Demo(f"http://127.0.0.1:{port}", second_broker, settings, workload, console.pid)
    stop_console(console)
    workload.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """Debian's Chromium: nothing downloads a browser."""
    return {"executable_path": "/usr/bin/chromium"}


@pytest.fixture
def page(page: Page) -> Page:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    return page


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def cells(page: Page):
    """The tables' cells: drawn on a canvas, mirrored in the DOM for accessibility."""
    return page.locator("[data-testid=stDataFrame] [role=gridcell]")


def metric(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label)


def open_actions(page: Page, demo: Demo, tenant: str) -> None:
    open_tenant(page, demo, tenant)
    page.get_by_role("tab", name="Actions").click()


def open_tenant(page: Page, demo: Demo, tenant: str) -> None:
    """The tenant's page, reloading until the console's poll has seen the tenant."""
    # A loaded page does not learn of new tenants: reload until the poll has listed it. Under
    # a loaded CI machine one load can take several seconds.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page.goto(f"{demo.url}/tenant?tenant={tenant}")
        actions = page.get_by_role("tab", name="Actions")
        try:
            actions.wait_for(timeout=10_000)
        except PlaywrightTimeout:
            continue
        return
    pytest.fail(f"the tenant page of {tenant} did not show its actions")


def extra_tenant(demo: Demo, tenant: str, ready: int = 0, dead: int = 0) -> str:
    """A tenant of the test's own beside the demo's, with `ready` jobs and `dead` dead letters
    (which died in its queue, so that a requeue sends them back there)."""
    connection = pika.BlockingConnection(pika.URLParameters(demo.broker.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    queue = declare_tenant(channel, demo.settings.tenant_exchange, tenant)
    for _ in range(ready):
        channel.basic_publish(demo.settings.tenant_exchange, tenant, b"job")
    death = {"queue": queue, "reason": "rejected", "count": 1, "routing-keys": [tenant]}
    died = pika.BasicProperties(delivery_mode=2, headers={"x-death": [death]})
    for _ in range(dead):
        channel.basic_publish("", f"{queue}.dlq", b"dead job", died)
    connection.close()
    return queue


def test_the_overview_shows_the_demo_tenants_and_totals(page: Page, demo: Demo):
    page.goto(demo.url)

    expect(metric(page, "Tenants")).to_contain_text(f"{len(demo.workload.tenants)}")
    expect(metric(page, "Ready")).to_be_visible()
    expect(cells(page).first).to_be_attached()
    expect(page.get_by_text("Needs attention")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("guest (administrator)")
    expect(sidebar).to_contain_text("May change things")
    expect(sidebar).to_contain_text("1 of 1 nodes running")
    expect(page.get_by_text("counts from the metrics endpoint")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_text("Ready, last hour")).to_be_attached()
    shot(page, "overview")


def test_a_deep_link_opens_the_tenant(page: Page, demo: Demo):
    tenant = demo.workload.served[0]

    page.goto(f"{demo.url}/tenant?tenant={tenant}")

    expect(page.get_by_role("heading", name=f"tenant.{tenant}")).to_be_visible()
    expect(page.get_by_role("tab", name="Messages")).to_be_visible()
    # .first: while the chart is drawn again, the old one may still be there.
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_attached()
    shot(page, "tenant")


@contextmanager
def second_vhost(demo: Demo, tenants: dict[str, int]) -> Iterator[str]:
    """A vhost of its own on the demo's broker, with the demo's tenant exchange and a queue per
    tenant id of `tenants` (`eu.<id>`) holding that many messages; deleted after."""
    vhost = f"eu-{uuid.uuid4().hex[:6]}"
    base, auth = f"{demo.broker.management_url}/api", ("guest", "guest")
    requests.put(f"{base}/vhosts/{vhost}", auth=auth, timeout=30).raise_for_status()
    requests.put(
        f"{base}/permissions/{vhost}/guest",
        json={"configure": ".*", "write": ".*", "read": ".*"},
        auth=auth,
        timeout=30,
    ).raise_for_status()
    connection = pika.BlockingConnection(pika.URLParameters(demo.broker.amqp_url_for(vhost)))
    channel = connection.channel()
    for tenant, count in tenants.items():
        declare_tenant(channel, demo.settings.tenant_exchange, tenant, queue=f"eu.{tenant}")
        for _ in range(count):
            channel.basic_publish(demo.settings.tenant_exchange, tenant, b"job")
    connection.close()
    try:
        yield vhost
    finally:
        requests.delete(f"{base}/vhosts/{vhost}", auth=auth, timeout=30)


def test_the_vhost_picker_shows_each_vhost_s_tenants_and_links_carry_it(page: Page, demo: Demo):
    same_ids = demo.workload.tenants[:2]
    with second_vhost(demo, {same_ids[0]: 7, same_ids[1]: 3}) as vhost:
        page.goto(f"{demo.url}/?vhost={vhost}")

        expect(metric(page, "Tenants")).to_contain_text("2")
        expect(metric(page, "Ready")).to_contain_text("10")
        picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="vhost")
        expect(picker).to_have_value(vhost)
        shot(page, "vhost-picked")

        page.goto(f"{demo.url}/tenant?tenant={same_ids[0]}&vhost={vhost}")
        expect(page.get_by_role("heading", name=f"eu.{same_ids[0]}")).to_be_visible()

        # The sidebar's pages keep the vhost, and the URL says it.
        page.get_by_test_id("stSidebarNav").get_by_text("Tenants").click()
        expect(metric(page, "Tenants")).to_contain_text("2")
        expect(page).to_have_url(re.compile(rf"vhost={vhost}"))

        picker.click()
        page.get_by_role("option", name="/", exact=True).click()
        expect(metric(page, "Tenants")).to_contain_text(f"{len(demo.workload.tenants)}")
        expect(page).not_to_have_url(re.compile("vhost="))

    page.goto(f"{demo.url}/?vhost=nope")
    expect(page.get_by_text("There is no vhost nope that user guest may see")).to_be_visible()


def test_the_consumers_page_lists_the_demo_pods(page: Page, demo: Demo):
    page.goto(f"{demo.url}/consumers")

    expect(cells(page).filter(has_text="pod-hung").first).to_be_attached()
    expect(cells(page).filter(has_text="pod-worker-0").first).to_be_attached()
    shot(page, "consumers")


def test_a_purge_through_its_dialog_shows_its_result(page: Page, demo: Demo):
    queue = extra_tenant(demo, "purge-me", ready=5)
    open_actions(page, demo, "purge-me")

    page.get_by_role("button", name="Purge ready messages").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Purge deletes the 5 ready messages")
    expect(dialog.get_by_role("button", name="Purge")).to_be_disabled()
    expect(dialog).to_contain_text(f"Type {queue} to confirm")
    dialog.get_by_role("textbox").fill(queue)
    dialog.get_by_role("textbox").press("Enter")
    shot(page, "purge-dialog")
    dialog.get_by_role("button", name="Purge").click()

    expect(page.get_by_text(f"Purged 5 ready messages of {queue}.")).to_be_visible()
    assert queue_counts(demo.settings, queue) == (0, 0)
    # The headline above is read after the purge, not from the poll before it.
    expect(metric(page, "Ready")).to_have_text(re.compile(r"^Ready\s*0$"))
    expect(page.get_by_text("5 ready and no consumer")).to_be_hidden()


def test_the_chart_draws_nothing_from_before_the_queue_existed(page: Page, demo: Demo):
    """The broker pads a queue's samples with zeros from up to 10 minutes before it existed:
    none of them may be drawn, and the line ends at the queue's 7 jobs."""
    created = time.time()
    extra_tenant(demo, "chart-me", ready=7)
    open_tenant(page, demo, "chart-me")
    chart = page.get_by_test_id("stPlotlyChart").locator(".js-plotly-plot")
    expect(chart.last).to_be_attached()

    def drawn() -> list[tuple[float, int]]:
        """The Ready line's points, as (seconds since the epoch, count), of the newest chart
        drawn (while the page draws it again, the old one may still be there, or the new one
        not drawn yet)."""
        points = chart.evaluate_all(
            "els => els.filter(el => el.data).map(el => el.data[0].x"
            ".map((x, i) => [Date.parse(x), el.data[0].y[i]]).filter(([, y]) => y !== null))"
            ".pop() || []"
        )
        return [(at / 1000, count) for at, count in points]

    deadline = time.monotonic() + 60
    points = drawn()
    while (not points or points[-1][1] != 7) and time.monotonic() < deadline:
        page.reload()
        chart.last.wait_for(state="attached")
        points = drawn()
    assert points and points[-1][1] == 7
    # Within a second of the declaration (the clocks of the page and of the test agree).
    assert [at for at, _ in points if at < created - 1] == []
    shot(page, "tenant-chart")

    # With no reload, the line follows the polls as the headline above it does.
    extra_tenant(demo, "chart-me", ready=4)
    expect(metric(page, "Ready")).to_have_text(re.compile(r"^Ready\s*11$"))
    wait_until(
        lambda: (points := drawn()) and points[-1][1] == 11,
        what="the chart's line to reach the headline's 11 ready without a reload",
    )


def test_a_requeue_shows_its_progress_then_its_counts(page: Page, demo: Demo):
    queue = extra_tenant(demo, "requeue-me", dead=60_000)
    open_actions(page, demo, "requeue-me")

    # The button counts over AMQP, as its dialog does: both say 60,000.
    page.get_by_role("button", name="Requeue 60,000 dead letters").click()
    expect(page.get_by_role("dialog")).to_contain_text("Requeue moves up to 60,000")
    page.get_by_role("dialog").get_by_role("button", name="Requeue").click()

    expect(page.get_by_test_id("stProgress")).to_be_visible()
    expect(page.get_by_text("moved").first).to_be_visible()
    shot(page, "requeue-progress")
    expect(page.get_by_text("Requeued 60,000 dead letters")).to_be_visible(timeout=120_000)
    assert queue_counts(demo.settings, queue)[0] == 60_000


def test_dead_letters_are_looked_through_and_an_export_replayed(page: Page, demo: Demo, tmp_path):
    queue = extra_tenant(demo, "replay-me", dead=30)
    open_tenant(page, demo, "replay-me")
    page.get_by_role("tab", name="Dead letters").click()
    page.get_by_role("button", name="Look through").click()
    expect(page.get_by_text(f"Looked through 30 messages of {queue}.dlq")).to_be_visible()
    shot(page, "dead-letters")

    exported = tmp_path / "replay.jsonl"
    lines = [{"routing_key": "replay-me", "properties": {"message_id": f"r-{n}"}, "body": "job"}
             for n in range(2)]  # fmt: skip
    exported.write_text("".join(json.dumps(line) + "\n" for line in lines))
    page.get_by_text("Replay an exported file").click()
    page.locator("input[type=file]").set_input_files(str(exported))
    expect(page.get_by_text("Publish 2 messages of replay.jsonl to")).to_be_visible()
    page.get_by_role("button", name="Publish", exact=True).click()
    deadline = time.monotonic() + 60
    while queue_counts(demo.settings, queue)[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    # The page runs again after the publish; its tabs may open on the first one (seen on a
    # loaded machine although they are keyed): the result is in this tab.
    page.wait_for_timeout(1000)
    page.get_by_role("tab", name="Dead letters").click()

    expect(page.get_by_text(f"Published 2 messages. {queue} holds 2 ready now.")).to_be_visible()
    assert queue_counts(demo.settings, queue)[0] == 2
    assert queue_counts(demo.settings, f"{queue}.dlq")[0] == 30


def test_the_stuck_pod_is_freed_from_the_consumers_page(page: Page, demo: Demo):
    """The demo's headline incident, with no CLI step: pod-hung holds its prefetch and never
    acks; returning its messages puts them back in its queue, and the page shows it gone."""
    queue = f"tenant.{demo.workload.hung}"
    page.goto(f"{demo.url}/consumers")
    button = page.get_by_role("button", name=re.compile(r"^Return pod-hung's 3 unacked messages$"))
    # The page's pods and its buttons live in a fragment: it shows the button within a poll
    # of the flag, without a reload.
    expect(button).to_be_visible(timeout=90_000)  # flagged once it has held for 20 s
    ready_before = queue_counts(demo.settings, queue)[0]
    button.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Requeue closes connection 'pod-hung' (no ack for")
    expect(dialog).to_contain_text("returns the 3 messages it holds unacked")
    expect(dialog.get_by_role("button", name="Requeue")).to_be_disabled()
    dialog.get_by_role("textbox").fill("pod-hung")
    dialog.get_by_role("textbox").press("Enter")
    shot(page, "free-pod-dialog")
    dialog.get_by_role("button", name="Requeue").click()

    returned = rf"Closed pod-hung: 3 messages went back to ready; {re.escape(queue)} holds [\d,]+ "
    expect(page.get_by_text(re.compile(returned + r"ready now\."))).to_be_visible()
    expect(cells(page).filter(has_text="pod-hung")).to_have_count(0)
    # The headline, read after the close: the stuck pod was the demo's only flagged one.
    expect(metric(page, "Flagged")).to_have_text(re.compile(r"^Flagged\s*0$"))
    ready_after, consumers = queue_counts(demo.settings, queue)
    assert (consumers, ready_after >= ready_before + 3) == (0, True)
    shot(page, "free-pod-done")

    page.goto(f"{demo.url}/audit")
    expect(cells(page).filter(has_text="requeue-connection").first).to_be_attached()
    expect(cells(page).filter(has_text="pod-hung").first).to_be_attached()


def test_stopping_the_broker_shows_the_stale_banner_and_restarting_clears_it(
    page: Page, demo: Demo
):
    page.goto(demo.url)
    expect(metric(page, "Tenants")).to_be_visible()
    banner = page.get_by_text("The broker has not answered since")

    demo.broker.ctl("stop_app")
    try:
        expect(banner).to_be_visible()
        expect(metric(page, "Tenants")).to_be_visible()  # the last good data stay
        shot(page, "stale-banner")
    finally:
        demo.broker.ctl("start_app")

    expect(banner).to_be_hidden(timeout=90_000)


def test_a_deep_link_with_a_url_for_a_tenant_shows_text_not_a_link(page: Page, demo: Demo):
    page.goto(f"{demo.url}/tenant?tenant=https://evil.example/x")

    expect(page.get_by_text("No queue is bound")).to_be_visible()
    expect(page.get_by_text("https://evil.example/x").first).to_be_visible()
    assert page.locator("a[href*='evil.example']").count() == 0


@pytest.mark.parametrize(("host", "answer"), [("127.0.0.1", 101), ("evil.example", 403)])
def test_the_websocket_answers_only_the_console_s_own_host_names(demo: Demo, host, answer):
    port = int(demo.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            (
                "GET /_stcore/stream HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                f"Origin: http://{host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
            ).encode()
        )
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert int(status_line.split()[1]) == answer


def test_streamlit_s_metrics_tell_nobody_about_sessions_or_caches(page: Page, demo: Demo):
    page.goto(demo.url)
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()

    answer = requests.get(f"{demo.url}/_stcore/metrics", timeout=10)

    assert (answer.status_code, answer.text.strip()) == (200, "# EOF")


def inotify_watches(pid: int) -> int:
    """How many paths the process watches through inotify (each watch is a line of its
    descriptor's fdinfo)."""
    watches = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:inotify":
                watches += (fd.parent.parent / "fdinfo" / fd.name).read_text().count("inotify wd:")
        except FileNotFoundError:  # closed since it was listed
            continue
    return watches


def test_the_console_watches_no_files(page: Page, demo: Demo):
    """Streamlit's file watcher is off (.streamlit/config.toml): it registered the app's folder,
    with the .venv in it, when the first browser connected, and handled an event for every file
    opened under it: more than a second of the console's CPU during a first page at 10,000
    tenants."""
    page.goto(demo.url)
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()

    assert inotify_watches(demo.console_pid) == 0


def test_a_console_is_guarded_and_polls_before_any_page_is_open(demo: Demo, tmp_path):
    """Streamlit's start-up hook (st.App's lifespan: pages/components/start.py) guards the
    server and starts the default vhost's polls before the first browser comes."""
    history = tmp_path / "history.sqlite"
    outside = {name: value for name, value in os.environ.items() if ENV_PREFIX not in name}
    env = (
        outside
        | broker_env(demo.broker)
        | {
            "WARREN_HISTORY_DB": str(history),
            "WARREN_AUDIT_DB": str(tmp_path / "audit.sqlite"),
        }
    )
    port = free_port()
    console = start_console(env, port, quiet=True)
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/_stcore/metrics", timeout=10)
        assert (answer.status_code, answer.text.strip()) == (200, "# EOF")

        def recorded() -> set[str]:
            try:
                with sqlite3.connect(history) as db:
                    rows = db.execute("SELECT DISTINCT queue FROM samples").fetchall()
            except sqlite3.OperationalError:  # the console has not made its tables yet
                return set()
            return {queue for (queue,) in rows}

        tenant_queues = {f"tenant.{tenant}" for tenant in demo.workload.tenants}
        wait_until(
            lambda: history.exists() and tenant_queues <= recorded(),
            what="the overview poll's first samples, with no page open",
        )
    finally:
        stop_console(console)


def streamlit_session_id(page: Page, url: str) -> str:
    """The id Streamlit gave this browser session, read from its first messages."""
    found: list[str] = []

    def read(frame) -> None:
        message = ForwardMsg()
        if isinstance(frame, bytes) and not found:
            message.ParseFromString(frame)
            if message.WhichOneof("type") == "new_session":
                found.append(message.new_session.initialize.session_id)

    page.on("websocket", lambda socket: socket.on("framereceived", read))
    page.goto(url)
    deadline = time.monotonic() + 30
    while not found and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return found[0]


def upload(page: Page, url: str, session_id: str, size: int) -> int:
    """The status of an upload of `size` bytes for the browser session `session_id`."""
    token = {c["name"]: c["value"] for c in page.context.cookies()}["_streamlit_xsrf"]
    sent = page.request.put(
        f"{url}/_stcore/upload_file/{session_id}/{uuid.uuid4().hex}",
        headers={"X-Xsrftoken": token},
        multipart={
            "file": {"name": "ids.csv", "mimeType": "text/csv", "buffer": b"a\n" * (size // 2)}
        },
    )
    return sent.status


@pytest.mark.parametrize(("size", "answer"), [(900_000, 204), (1_200_000, 413)])
def test_an_upload_larger_than_the_onboarding_list_needs_is_refused(
    page: Page, demo: Demo, size, answer
):
    session_id = streamlit_session_id(page, f"{demo.url}/onboarding")
    # The page accepts uploads once its script reached the uploader, not when the session opens.
    expect(page.get_by_test_id("stFileUploader")).to_be_visible()

    assert upload(page, demo.url, session_id, size) == answer


@contextmanager
def login_console(demo: Demo) -> Iterator[str]:
    """A second console on the demo's broker, in WARREN_AUTH=login; its URL."""
    env = broker_env(demo.broker) | {"WARREN_AUTH": "login"}
    outside = {name: value for name, value in os.environ.items() if ENV_PREFIX not in name}
    port = free_port()
    console = start_console(outside | env, port, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_console(console)


def test_a_session_on_the_login_form_cannot_upload(page: Page, demo: Demo):
    with login_console(demo) as url:
        session_id = streamlit_session_id(page, f"{url}/onboarding")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()

        assert upload(page, url, session_id, 100_000) == 403


def login_cookies(page: Page) -> list[dict]:
    return [cookie for cookie in page.context.cookies() if cookie["name"] == "warren_login"]


def test_a_login_outlives_reloads_and_deep_links_until_logout(page: Page, demo: Demo):
    tenant = demo_tenants(6)[0]
    log_out = page.get_by_role("button", name="Log out")
    log_in = page.get_by_role("button", name="Log in")
    with login_console(demo) as url:
        page.goto(f"{url}/tenant?tenant={tenant}")
        page.get_by_role("textbox", name="User").fill("guest")
        page.get_by_role("textbox", name="Password").fill("guest")
        log_in.click()
        expect(log_out).to_be_visible()
        # The page's script sets the cookie after the rerun that shows the sidebar.
        [kept] = wait_until(lambda: login_cookies(page), timeout=30, what="the login cookie")
        assert "guest" not in kept["value"] and kept["sameSite"] == "Strict"

        page.reload()
        expect(log_out).to_be_visible()
        page.goto(f"{url}/consumers")
        expect(log_out).to_be_visible()
        expect(log_in).to_have_count(0)
        log_out.click()
        expect(log_in).to_be_visible()
        wait_until(lambda: login_cookies(page) == [], timeout=30, what="the cookie cleared")
        # The token is dead on the server too: a copy of the cookie logs nobody in.
        page.context.add_cookies([kept])
        page.reload()
        expect(log_in).to_be_visible()
        shot(page, "login-kept-then-logged-out")


OIDC_PROVIDER = Path(__file__).resolve().parent / "support" / "oidc" / "provider.mjs"
TEAM_ROLES = {"admin": ["group:sre-leads"], "operator": ["group:sre"], "viewer": ["*"]}


@dataclass
class TeamConsole:
    console: Demo
    # The team's PostgreSQL database: the audit log.
    database: str


@pytest.fixture(scope="module")
def team(demo: Demo, postgres, tmp_path_factory) -> Iterator[TeamConsole]:
    """A console on the demo's broker for a team: people sign in through a real OpenID Connect
    provider (npm's oidc-provider on this machine's Node.js, tests/support/oidc), their role
    comes from their groups, and the audit log is in PostgreSQL."""
    folder = tmp_path_factory.mktemp("team")
    port, provider_port = free_port(), free_port()
    redirect = f"http://127.0.0.1:{port}/oauth2callback"
    provider = subprocess.Popen(
        ["node", str(OIDC_PROVIDER), str(provider_port), redirect, "team-secret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert provider.stdout.readline().startswith("listening on"), "the provider did not start"
    secrets = folder / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "{redirect}"\n'
        'cookie_secret = "a-cookie-secret-for-the-tests-only"\n'
        'client_id = "warren"\n'
        'client_secret = "team-secret"\n'
        f'server_metadata_url = "http://127.0.0.1:{provider_port}/.well-known/openid-configuration"\n'
        'client_kwargs = { scope = "openid email profile groups", prompt = "login" }\n'
    )
    database = postgres.create_database("team_console")
    env = broker_env(demo.broker, port) | {
        "WARREN_AUTH": "oidc",
        "WARREN_ROLES": json.dumps(TEAM_ROLES),
        "WARREN_DATABASE_URL": database,
        "WARREN_REFRESH_SECONDS": "2",
    }
    outside = {name: value for name, value in os.environ.items() if ENV_PREFIX not in name}
    console = start_console(outside | env, port, quiet=True, secrets=secrets)
    url = f"http://127.0.0.1:{port}"
    yield TeamConsole(Demo(url, demo.broker, demo.settings, demo.workload, console.pid), database)
    stop_console(console)
    provider.terminate()
    provider.wait()


def sign_in(page: Page, team: TeamConsole, who: str) -> None:
    """Signs in through the provider's own pages (any password), and consents."""
    page.goto(team.console.url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/interaction/**")
    page.locator("input[name=login]").fill(who)
    page.locator("input[name=password]").fill("any")
    page.locator("button[type=submit]").click()
    while "/interaction/" in page.url:
        page.locator("button[type=submit]").click()
        page.wait_for_load_state()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_viewer_signed_in_through_the_provider_sees_no_action(page: Page, team: TeamConsole):
    extra_tenant(team.console, "viewed", ready=3, dead=4)
    sign_in(page, team, "vera")
    open_actions(page, team.console, "viewed")

    actions = page.get_by_role("tabpanel", name="Actions")
    expect(actions.get_by_text("vera@example.com is a viewer, who may only look")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Requeue|Purge|Republish"))).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("vera@example.com (viewer)")
    shot(page, "signed-in-viewer")


def test_an_operator_s_requeue_is_audited_under_their_email(page: Page, team: TeamConsole):
    queue = extra_tenant(team.console, "operated", dead=25)
    sign_in(page, team, "bob")
    open_actions(page, team.console, "operated")

    expect(page.get_by_role("button", name="Purge ready messages")).to_have_count(0)
    page.get_by_role("button", name="Requeue 25 dead letters").click()
    page.get_by_role("dialog").get_by_role("button", name="Requeue").click()
    expect(page.get_by_text("Requeued 25 dead letters")).to_be_visible()
    shot(page, "signed-in-operator-requeued")

    assert queue_counts(team.console.settings, queue)[0] == 25
    [record] = [r for r in AuditLog(team.database).records() if r.target == f"{queue}.dlq"]
    assert (record.action, record.actor, record.outcome) == (
        "requeue", "bob@example.com (as guest, console)", "ok",
    )  # fmt: skip
    page.get_by_role("button", name="Sign out").click()
    # The provider asks whether to end its own session too.
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
