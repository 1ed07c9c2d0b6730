"""Running a farm from the dashboard (issue 15, item 8), in a real headless Chromium against a
real `printforge serve --mock`: temperature graphs, the layer view with elapsed and finish times,
uploads, queue controls, material and spools, the admin console through the G-code gate, and a
viewer who sees all of it and can change none of it."""

from __future__ import annotations

import io
import os
import re
import shutil
import urllib.error
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_dashboard import ARGS, CHROMIUM
from tests.fakes.serve_process import ServeProcess

KEY = "e2e-farm-admin-key-0123456789"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]


def _serve(tmp_path: Path, sim_speed: float) -> ServeProcess:
    config = tmp_path / "farm.toml"
    config.write_text('[printers.virtual]\ndriver = "virtual"\n')
    return ServeProcess(tmp_path / "data", KEY, sim_speed=sim_speed, config=config).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    # Slow enough that a 20 mm cube prints for tens of seconds: the page is read mid-print.
    proc = _serve(tmp_path, 10.0)
    yield proc
    proc.stop()


class _Page:
    """One browser page signed in with `key`, collecting the page's script errors."""

    def __init__(self, pw: Any, url: str, key: str) -> None:
        self.browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        self.page = self.browser.new_page(viewport={"width": 1440, "height": 1000})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.page.goto(f"{url}/?token={key}")

    def close(self) -> None:
        self.browser.close()


def _stl_box() -> bytes:
    import trimesh

    out = io.BytesIO()
    trimesh.creation.box(extents=(20, 20, 10)).export(out, file_type="stl")
    return out.getvalue()


def test_print_an_upload_and_watch_temperatures_layers_and_times(
    server: ServeProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        ui = _Page(pw, server.url, KEY)
        try:
            page = ui.page
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            # A model file is uploaded and printed, no sentence needed.
            page.get_by_test_id("upload").set_input_files(
                {"name": "bracket.stl", "mimeType": "model/stl", "buffer": _stl_box()}
            )
            page.click("#submit-btn")
            row = page.locator("#jobs tr").first
            expect(row).to_have_attribute("data-state", "printing", timeout=90_000)
            expect(row).to_contain_text("bracket.stl")
            job_id = row.get_attribute("data-job")
            assert job_id
            assert server.api("GET", f"/api/jobs/{job_id}")["source"] == "model"
            row.click()

            # The layer view draws the layer being printed from the job's G-code, and follows
            # the printer as it climbs.
            view = page.get_by_test_id("layer-view")
            page.wait_for_function(
                """() => {
                    const v = document.querySelector('[data-testid=layer-view]');
                    const c = document.querySelector('#layer-canvas');
                    return v && Number(v.dataset.layer) >= 2 && c && Number(c.dataset.drawn) > 0
                        && v.textContent.includes('printing');
                }""",
                timeout=60_000,
            )
            # Paused from the card, the print holds still while the page is read.
            card = page.get_by_test_id("printer-virtual")
            card.get_by_role("button", name="Pause").click()
            expect(card).to_have_attribute("data-state", "paused", timeout=30_000)

            # The temperature graph has drawn the heat-up: actual and target lines, hotend
            # and bed, from the printer's own status.
            graph = page.get_by_test_id("temps-virtual")
            assert int(graph.get_attribute("data-points") or 0) >= 2
            for series in ("hotend-actual", "hotend-target", "bed-actual", "bed-target"):
                expect(graph.locator(f"polyline[data-series={series}]")).to_have_count(1)

            layers = int(view.get_attribute("data-layers") or 0)
            job = server.api("GET", f"/api/jobs/{job_id}")
            assert layers == job["gcode"]["layers"]
            expect(view).to_contain_text("printing")
            # Elapsed time, and the finish time (the server's "done at", from its time plan).
            expect(page.get_by_test_id("job-times")).to_contain_text("elapsed")
            expect(page.get_by_test_id("times-virtual")).to_contain_text("elapsed")
            expect(page.get_by_test_id("job-detail")).to_contain_text(
                re.compile(r"done at|finishes about")
            )
            # The arrows browse the sliced layers: one below the printing layer it stays put
            # (no longer "printing"); "live" follows the printer again.
            view.get_by_role("button", name="◀").click()
            expect(view).not_to_contain_text("printing", timeout=10_000)
            view.get_by_role("button", name="live").click()
            expect(view).to_contain_text("printing", timeout=10_000)

            card.get_by_role("button", name="Resume").click()
            expect(card).to_have_attribute("data-state", "printing", timeout=30_000)
            # The picture in docs/server.md: a printing job, its layer, the printer's panel.
            card.get_by_role("button", name="Material · console").click()
            expect(page.get_by_test_id("printer-panel")).to_be_visible()
            page.screenshot(path=str(tmp_path / "dashboard-farm.png"), full_page=True)
            keep = os.environ.get("PRINTFORGE_SCREENSHOT_DIR")
            if keep:
                shutil.copy(tmp_path / "dashboard-farm.png", Path(keep) / "dashboard-farm.png")

            # Cancelled from the card, the job is retried from its row.
            card.get_by_role("button", name="Cancel").click()
            expect(page.locator(f"#jobs tr[data-job='{job_id}']")).to_have_attribute(
                "data-state", "cancelled", timeout=30_000
            )
            page.locator(f"#jobs tr[data-job='{job_id}']").get_by_role(
                "button", name="Retry"
            ).click()
            retried = page.locator(f"#jobs tr:not([data-job='{job_id}'])")
            expect(retried).to_have_count(1, timeout=15_000)
            new_id = retried.get_attribute("data-job")
            assert server.api("GET", f"/api/jobs/{new_id}")["retry_of"] == job_id
            assert ui.errors == []
        finally:
            ui.close()


def test_console_material_and_spool_on_an_idle_printer(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    spool = server.api(
        "POST", "/api/spools", {"material": "PETG", "remaining_weight": 640, "name": "blue"}
    )
    with sync_playwright() as pw:
        ui = _Page(pw, server.url, KEY)
        try:
            page = ui.page
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            card = page.get_by_test_id("printer-virtual")
            expect(card).to_have_attribute("data-state", "idle", timeout=15_000)
            card.get_by_role("button", name="Material · console").click()
            panel = page.get_by_test_id("printer-panel")
            expect(panel).to_be_visible()

            # Every line passes the gate on the server, which remembers the lines before it.
            log = page.get_by_test_id("console-log")

            def send(line: str) -> None:
                page.fill("#console-line", line)
                page.press("#console-line", "Enter")
                expect(log).to_contain_text(f"> {line}")

            send("M104 S400")
            expect(log).to_contain_text("refused")
            expect(log.locator(".refused").last).to_contain_text("400")
            send("G1 X10 Y10")
            expect(log.locator(".refused").last).to_contain_text("home first")
            send("G28")
            send("G1 X10 Y10 Z5 F3000")
            send("M104 S200")
            expect(log.locator(".ok")).to_have_count(3)
            # The printer heats to the console's target, and the graph's target line says so.
            expect(card.locator(".temps")).to_contain_text("/ 200°", timeout=15_000)
            send("M104 S0")

            # The material loaded, then a spool (its material comes with it).
            panel.locator("#panel-material").select_option("ABS")
            panel.get_by_role("button", name="Set material").click()
            expect(page.get_by_test_id("material-virtual")).to_have_text("ABS", timeout=10_000)
            panel.locator("#panel-spool").select_option(str(spool["id"]))
            panel.get_by_role("button", name="Load spool").click()
            expect(page.get_by_test_id("material-virtual")).to_have_text("PETG", timeout=10_000)
            expect(card).to_contain_text("spool blue 640 g")
            printers = server.api("GET", "/api/printers")["printers"]
            assert printers[0]["spool"]["id"] == spool["id"]
            assert ui.errors == []
        finally:
            ui.close()


def test_queue_controls_and_a_viewer_who_cannot_use_them(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    # Jobs not before tomorrow stay queued, in an order the page can change.
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ids = [
        server.api("POST", "/api/jobs", {"request": f"a {size} mm calibration cube",
                                         "not_before": later})["job_id"]
        for size in (10, 12, 14)
    ]  # fmt: skip
    viewer_key = server.api("POST", "/api/auth/keys", {"name": "wall", "role": "viewer"})["key"]

    def order() -> list[str]:
        return list(page.locator("#jobs tr").evaluate_all("rs => rs.map(r => r.dataset.job)"))

    with sync_playwright() as pw:
        ui = _Page(pw, server.url, KEY)
        try:
            page = ui.page
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            rows = page.locator("#jobs tr")
            expect(rows).to_have_count(3, timeout=15_000)
            assert order() == ids  # the order they will print: oldest first
            # Why each waits is on the row.
            expect(rows.first).to_contain_text("not before")

            # Drag the last onto the top half of the first: it goes before it.
            page.locator(f"#jobs tr[data-job='{ids[2]}']").drag_to(
                page.locator(f"#jobs tr[data-job='{ids[0]}']"), target_position={"x": 40, "y": 3}
            )
            expect(rows.first).to_have_attribute("data-job", ids[2], timeout=10_000)
            assert order() == [ids[2], ids[0], ids[1]]
            # Buttons do the same for keyboard users.
            page.locator(f"#jobs tr[data-job='{ids[2]}']").get_by_role(
                "button", name="move down"
            ).click()
            expect(rows.first).to_have_attribute("data-job", ids[0], timeout=10_000)
            page.locator(f"#jobs tr[data-job='{ids[1]}']").get_by_role(
                "button", name="to the top"
            ).click()
            expect(rows.first).to_have_attribute("data-job", ids[1], timeout=10_000)
            assert order() == [ids[1], ids[0], ids[2]]

            # Hold and release.
            held = page.locator(f"#jobs tr[data-job='{ids[0]}']")
            held.get_by_role("button", name="hold").click()
            expect(held).to_have_attribute("data-held", "true", timeout=10_000)
            assert server.api("GET", f"/api/jobs/{ids[0]}")["held"] is True
            held.get_by_role("button", name="release").click()
            expect(held).to_have_attribute("data-held", "false", timeout=10_000)

            # A priority from the job's detail puts the last job first.
            page.locator(f"#jobs tr[data-job='{ids[2]}']").click()
            expect(page.get_by_test_id("job-waiting")).to_contain_text("not before")
            page.fill("#detail-priority", "50")
            page.get_by_role("button", name="Set priority").click()
            expect(rows.first).to_have_attribute("data-job", ids[2], timeout=10_000)
            assert server.api("GET", f"/api/jobs/{ids[2]}")["priority"] == 50
            assert ui.errors == []
        finally:
            ui.close()

        # A viewer sees the queue and the printers, and nothing to act with.
        ui = _Page(pw, server.url, viewer_key)
        try:
            page = ui.page
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            rows = page.locator("#jobs tr")
            expect(rows).to_have_count(3, timeout=15_000)
            assert order()[0] == ids[2]
            expect(page.locator("#jobs button")).to_have_count(0)
            expect(page.locator("#jobs tr[draggable=true]")).to_have_count(0)
            expect(page.locator("#submit-btn")).to_be_disabled()
            page.get_by_test_id("printer-virtual").get_by_role(
                "button", name="Material · console"
            ).click()
            panel = page.get_by_test_id("printer-panel")
            expect(panel.get_by_role("button", name="Set material")).to_be_disabled()
            expect(panel).to_contain_text("The console is for admin keys")
            expect(page.locator("#console-line")).to_have_count(0)
            # The server refuses anyway, whatever the page shows.
            status = page.evaluate(
                """async (id) => (await fetch(`/api/jobs/${id}/hold`, {method: 'POST',
                    headers: {Authorization: `Bearer ${localStorage.getItem('printforge.token')}`}
                })).status""",
                ids[0],
            )
            assert status == 403
            assert ui.errors == []
        finally:
            ui.close()

    # An operator may hold jobs but not use the console: printer.gcode is admin only.
    operator = server.api("POST", "/api/auth/keys", {"name": "op", "role": "operator"})["key"]
    req = ServeProcess(server.data_dir, operator, port=server.port)
    with pytest.raises(urllib.error.HTTPError) as refused:
        req.api("POST", "/api/printers/virtual/gcode", {"line": "G28"})
    refused.value.close()  # the refusal's body holds its socket
    assert refused.value.code == 403
