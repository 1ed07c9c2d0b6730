"""The dashboard in a real headless Chromium against a real `printforge serve`: submit a request
through the page and watch it finish on a virtual printer, live over the websocket."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.serve_process import ServeProcess

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "e2e-admin-key-0123456789"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    config = tmp_path / "farm.toml"
    # Two printers so the page shows a farm; the second must be cleared by hand after a print.
    config.write_text(
        '[printers.virtual]\ndriver = "virtual"\n\n'
        '[printers.mk3-left]\ndriver = "virtual"\nprofile = "prusa-mk3s"\nmaterial = "PETG"\n'
        "bed_clear_required = true\n"
    )
    proc = ServeProcess(tmp_path / "data", KEY, sim_speed=400.0, config=config).start()
    yield proc
    proc.stop()


def test_submit_through_the_page_and_watch_it_print(server: ServeProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{server.url}/?token={KEY}")
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            # The token left the address bar once stored.
            assert "token=" not in page.url
            expect(page.get_by_test_id("printer-virtual")).to_have_attribute("data-state", "idle")
            expect(page.get_by_test_id("printer-mk3-left")).to_be_visible()
            # Both run as simulations here, and the cards say so (issue 15).
            expect(page.get_by_test_id("simulated-virtual")).to_have_text("simulated")
            expect(page.get_by_test_id("printer-mk3-left")).to_have_attribute(
                "data-simulated", "true"
            )

            page.fill("#req-text", "a 20 mm calibration cube")
            page.select_option("#req-printer", "virtual")
            page.click("#submit-btn")
            row = page.locator("#jobs tr").first
            expect(row).to_be_visible()
            job_id = row.get_attribute("data-job")
            assert job_id
            # Live: the printer card goes to printing while the job streams...
            expect(page.get_by_test_id("printer-virtual")).to_have_attribute(
                "data-state", "printing", timeout=60_000
            )
            expect(row).to_have_attribute("data-state", "printing")
            page.screenshot(path=str(tmp_path / "dashboard-printing.png"))
            # ...and the job completes without reloading the page.
            expect(row).to_have_attribute("data-state", "completed", timeout=90_000)
            expect(page.get_by_test_id("printer-virtual")).to_have_attribute("data-state", "idle")
            detail = page.get_by_test_id("job-detail")
            expect(detail.locator("[data-stage=printer]")).to_contain_text("completed")
            expect(page.get_by_test_id("layer-preview").locator("img")).to_be_visible()
            expect(page.get_by_test_id("model-preview").locator("canvas, img")).to_be_visible()
            expect(page.get_by_test_id("health").locator("li").first).to_be_visible()
            # A bad request is refused by the server and shown on the page.
            # (blank text passes the browser's `required` check; the server refuses it).
            page.fill("#req-text", "   ")
            page.click("#submit-btn")
            expect(page.get_by_test_id("submit-error")).to_contain_text("request")
            expect(page.get_by_test_id("connection")).to_have_class("conn online")
            row.click()
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            keep = os.environ.get("PRINTFORGE_SCREENSHOT_DIR")
            if keep:
                for name in ("dashboard.png", "dashboard-printing.png"):
                    shutil.copy(tmp_path / name, Path(keep) / name)
            assert errors == []
        finally:
            browser.close()


def test_a_job_behind_a_busy_printer_says_it_is_waiting(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{server.url}/?token={KEY}")
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            # Two jobs for one printer: while the first prints, the sliced second waits (its
            # state is still "slicing"), and the page says so instead of looking stuck.
            for size in (20, 15):
                page.fill("#req-text", f"a {size} mm calibration cube")
                page.select_option("#req-printer", "virtual")
                page.click("#submit-btn")
                expect(page.locator("#req-text")).to_have_value("", timeout=15_000)
            rows = page.locator("#jobs tr")
            expect(rows).to_have_count(2, timeout=15_000)
            waiting = page.locator("#jobs tr[data-state=slicing]", has_text="waiting for a printer")
            expect(waiting).to_have_count(1, timeout=60_000)
            for i in range(2):
                expect(rows.nth(i)).to_have_attribute("data-state", "completed", timeout=120_000)
            expect(page.locator("#jobs")).not_to_contain_text("waiting for a printer")
            assert errors == []
        finally:
            browser.close()


def test_a_question_is_shown_and_answered_on_the_page(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{server.url}/?token={KEY}")
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            # Research cannot know the shaft of someone's stove: the job asks, the page shows
            # the question with a box, and the answer runs the job again.
            page.fill("#req-text", "a knob for my stove")
            page.select_option("#req-printer", "virtual")
            page.click("#submit-btn")
            row = page.locator("#jobs tr").first
            expect(row).to_have_attribute("data-state", "needs_input", timeout=60_000)
            row.click()
            question = page.get_by_test_id("job-question")
            expect(question).to_contain_text("stove")
            page.fill("#answer-text", "the shaft is 6 mm with a D flat")
            question.get_by_role("button", name="Answer").click()
            detail = page.get_by_test_id("job-detail")
            expect(detail.locator("[data-stage=cad]")).to_contain_text("completed", timeout=60_000)
            expect(page.get_by_test_id("job-question")).to_have_count(0)
            assert errors == []
        finally:
            browser.close()
