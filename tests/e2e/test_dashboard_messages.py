"""What the dashboard tells a person (issue 18), in a real headless Chromium against a real
`printforge serve`: where the first admin key is, and layer pictures that can be read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_dashboard import ARGS, CHROMIUM
from tests.fakes.serve_process import ServeProcess

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]


@pytest.fixture
def keyless(tmp_path: Path) -> Iterator[ServeProcess]:
    """A server started with no key configured: it makes the first admin key itself."""
    proc = ServeProcess(tmp_path / "data", "", sim_speed=2000.0).start()
    yield proc
    proc.stop()


def test_sign_in_says_where_the_admin_key_is_and_layers_open_full_size(
    keyless: ServeProcess,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    key_file = keyless.data_dir / "admin.key"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(keyless.url + "/")
            hint = page.get_by_test_id("login-hint")
            expect(hint).to_be_visible(timeout=15_000)
            expect(hint).to_contain_text(f"{key_file} on the server")
            assert key_file.is_file()

            # Signed in with that key, a job's layer strip is shown across the card and opens
            # at full size.
            page.fill("#login-key", key_file.read_text().strip())
            page.click("#login-form button[type=submit]")
            expect(page.get_by_test_id("connection")).to_have_class("conn online", timeout=15_000)
            page.fill("#req-text", "a 20 mm calibration cube")
            page.click("#submit-btn")
            row = page.locator("#jobs tr").first
            expect(row).to_have_attribute("data-state", "completed", timeout=120_000)
            row.click()
            picture = page.get_by_test_id("layer-preview").locator("a img")
            expect(picture).to_be_visible()
            # The detail is redrawn on every event, and a new image has no width until it has
            # loaded: wait (bounded) for the strip to be laid out across the card.
            page.wait_for_function(
                """() => {
                    const i = document.querySelector('[data-testid=layer-preview] a img');
                    const d = document.querySelector('[data-testid=job-detail]');
                    return i && d && i.complete && i.clientWidth >= 0.9 * d.clientWidth;
                }""",
                timeout=15_000,
            )
            shown = picture.evaluate("i => [i.clientWidth, i.naturalWidth]")
            detail_width = page.get_by_test_id("job-detail").evaluate("d => d.clientWidth")
            # The strip is 1440 px wide: in a half-card square it was ~170 px, unreadable.
            assert shown[0] >= 0.9 * detail_width, (shown, detail_width)
            with page.expect_popup() as opened:
                picture.click()
            full = opened.value
            full.wait_for_load_state()
            assert "layers" in full.url
            natural = full.locator("img").evaluate("i => i.naturalWidth")
            assert natural == shown[1]
            assert errors == []
        finally:
            browser.close()
