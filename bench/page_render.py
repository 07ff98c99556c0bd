"""How long a real browser takes to show the tenant overview at 10,000 tenants, against 20,
and the first page after a fresh start against a warm one.

Builds its own broker with a vhost of 20 and one of 10,000 tenant queues (once per run), serves
the console on each, and times in Debian's Chromium (driven by Playwright) from navigation to
the overview rendered: the headline's tenant count and the table on screen. *Answers*: from the
console's launch to its health endpoint answering (its start-up included). *First page*: the
first load after that (what the start-up did not do: the first poll, the imports, the first
script run); then medians of `--repeat` warm loads, for the default top 1,000 rows and for all
rows. *Start to first page*: the two added.
Run: .venv/bin/python bench/page_render.py [--repeat 3]
"""

import argparse
import statistics
import time

from console import serve_console, stop_console
from overview_refresh import build_vhost
from playwright.sync_api import sync_playwright

from dashboard.local.rabbitmq import LocalBroker, free_port

SIZES = (20, 10_000)
SETTLE_SECONDS = 10


def rendered_seconds(browser, url: str, tenants: int, all_rows: bool) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    started = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.get_by_text(f"{tenants:,}", exact=True).first.wait_for(timeout=120_000)
    page.wait_for_selector("[data-testid=stDataFrame] canvas", timeout=120_000)
    if all_rows:
        page.get_by_test_id("stButtonGroup").get_by_text("all", exact=True).click()
        page.get_by_text(f"{tenants:,} of {tenants:,} matching").wait_for(timeout=120_000)
    seconds = time.perf_counter() - started
    page.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results, firsts, answered = {}, {}, {}
    with LocalBroker.create() as broker, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        for tenants in SIZES:
            vhost = f"render-{tenants}"
            build_vhost(broker, vhost, tenants)
            # The broker's first statistics of the new queues, as bench/overview_refresh.py
            # waits: a console started at once met a broker still busy with 10,000 new queues,
            # and its first page paid for that, the warm pages after it not.
            time.sleep(SETTLE_SECONDS)
            port = free_port()
            launched = time.perf_counter()
            console = serve_console(
                port, management_url=broker.management_url, metrics_url=broker.metrics_url,
                amqp_url=broker.amqp_url_for(vhost), vhost=vhost, tenant_exchange="tenants",
                request_timeout="120", history_db=str(broker.base_dir / f"{vhost}.sqlite"),
            )  # fmt: skip
            answered[tenants] = time.perf_counter() - launched
            try:
                url = f"http://127.0.0.1:{port}/"
                firsts[tenants] = rendered_seconds(browser, url, tenants, False)
                for all_rows in (False, True):
                    samples = [
                        rendered_seconds(browser, url, tenants, all_rows)
                        for _ in range(args.repeat)
                    ]
                    results[(tenants, all_rows)] = statistics.median(samples)
            finally:
                stop_console(console)
        browser.close()
    print(
        f"{'tenants':>8} {'answers':>8} {'first page':>11} {'top 1,000 rows':>15} {'all rows':>10}"
        f" {'first/warm':>11} {'start to first page':>20}"
    )
    for tenants in SIZES:
        warm, first = results[(tenants, False)], firsts[tenants]
        print(
            f"{tenants:>8,} {answered[tenants]:>7.2f}s {first:>10.2f}s {warm:>14.2f}s"
            f" {results[(tenants, True)]:>9.2f}s {first / warm:>10.2f}x"
            f" {answered[tenants] + first:>19.2f}s"
        )
    base = results[(SIZES[0], False)]
    print(f"10,000 / 20 tenants (top 1,000 rows): {results[(SIZES[1], False)] / base:.2f}x")


if __name__ == "__main__":
    main()
