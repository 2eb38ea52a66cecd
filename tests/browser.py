"""Browser fixtures (``browser``, ``page``, ``screenshot``) for every test that drives a page:
Playwright driving Debian's Chromium (/usr/bin/chromium) against ``live_server``. Loaded once for
the whole run from tests/conftest.py, so one Playwright instance serves every browser test.

Playwright's own browser download cannot work here, so we launch the system Chromium. Without it
these tests skip with the reason, except under CI=true, where they fail.
"""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine has no network: without these Chromium keeps dialling out and logging refusals.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; ./quorum test does it as root)."
        if os.environ.get("CI") == "true":
            pytest.fail(f"Browser tests must run in CI, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would otherwise refuse ORM
    # calls made from the test body (fixtures, factories) as "async unsafe".
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (own cookies) per test; ``page.base_url`` is the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(request):
    """``screenshot(page, "after-login")`` saves artifacts/screenshots/<test>-after-login.png."""

    def _save(page, label: str) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        path = SCREENSHOT_DIR / f"{test_name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _save
