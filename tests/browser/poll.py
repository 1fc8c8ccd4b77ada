"""Waiting for a page's script state, polled from Python.

Playwright's ``wait_for_function`` evaluates its predicate with ``eval``/``new Function``
inside the page, which our pages' Content-Security-Policy (rightly) forbids; whether the
browser lets it through depends on its build (CI's Chromium refused it, Debian's did not).
Each check here is one ``page.evaluate`` call, which CSP does not govern.
"""

from __future__ import annotations

import time

from playwright.sync_api import Page


def wait_until(page: Page, script: str, what: str = "", within_s: float = 30.0) -> None:
    """Until ``script`` (a JavaScript expression) is truthy on ``page``; fails naming
    ``what`` (or the script) and the page's reported script errors, if any."""
    deadline = time.monotonic() + within_s
    while not page.evaluate(script):
        errors = page.evaluate("window.gwErrors || []")
        assert time.monotonic() < deadline, f"timed out waiting for {what or script}; {errors}"
        page.wait_for_timeout(100)
