"""A developer in Swagger UI: headless Chromium opens /docs, authorizes with a token, runs the
call and sees 200 with the JSON list. The screenshot lands in tests/artifacts/."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.dataset import Dataset
from tests.live import chromium_path, free_port
from tests.tokens import Tokens

CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (Debian packages chromium, chromium-driver)"
)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The test's app behind a real HTTP server on 127.0.0.1."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


def test_swagger_ui_authorizes_and_lists_encounters(
    base_url: str, dataset: Dataset, tokens: Tokens
) -> None:
    from playwright.sync_api import expect, sync_playwright

    token = tokens.mint("ST-000123", "Student")
    requested: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{base_url}/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Encounters")

            page.locator(".auth-wrapper button.authorize").click()
            dialog = page.locator(".modal-ux")
            dialog.locator("input").first.fill(token)
            dialog.locator(".auth-btn-wrapper button.authorize").click()
            dialog.locator(".auth-btn-wrapper button.btn-done").click()

            operation = page.locator(".opblock-get", has_text="/users/{userIdentifier}/encounters")
            operation.locator(".opblock-summary-control").click()
            operation.locator("button.try-out__btn").click()
            operation.locator('input[placeholder="userIdentifier"]').fill("me")
            # Swagger UI pre-fills the documented examples; the default window is "from now".
            for optional in ("from", "to"):
                field = operation.locator(f'input[placeholder="{optional}"]')
                if field.count():
                    field.fill("")
            operation.locator("button.execute").click()

            live = operation.locator(".live-responses-table")
            status = live.locator("tr.response .response-col_status")
            expect(status).to_have_text("200", timeout=15000)
            body = live.locator(
                "tr.response .response-col_description .microlight"
            ).first.inner_text()
            # The curl example Swagger UI shows carries the token it authorized with.
            curl = operation.locator(".curl-command").inner_text()
            # Swagger UI lists problems with the document (a dangling $ref, say) in a red box.
            expect(page.locator(".swagger-ui .errors-wrapper")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "swagger-ui.png"), full_page=True)
        finally:
            browser.close()

    encounters = json.loads(body)
    assert isinstance(encounters, list) and encounters
    assert str(dataset["lis_booked"]) in {e["Id"] for e in encounters}
    assert f"Bearer {token}" in curl
    # Everything the page loaded came from the service itself: no CDN, no validator.
    assert requested and all(url.startswith(base_url) for url in requested), requested
