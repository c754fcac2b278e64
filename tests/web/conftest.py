"""Helpers for the web-experience tests: a worker-thread runner and README screenshots."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connection

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def elsewhere(service, **kwargs):
    """Run a service on another thread, as a worker or another request would.

    Playwright's sync API keeps an event loop on the test's thread, where the
    after-commit pushes (``async_to_sync``) may not run.
    """

    def call():
        try:
            return service(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=30)


def screenshot(page, name: str) -> None:
    """Save a README screenshot when ``HUMANLINE_SCREENSHOTS=1``; never fail a test over it."""
    if os.environ.get("HUMANLINE_SCREENSHOTS") != "1":
        return
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    except Exception:  # a screenshot is a by-product, not the test
        pass
