"""A planner signed in to the planner's workspace in Chromium (zh-CN, Asia/Shanghai), for the
planner's browser tests: every request outside 127.0.0.1 is refused and noted, every
JavaScript error noted, in the list handed back with the page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.browser.test_maps_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.gridded import PASSWORD


@contextmanager
def signed_in_planner(url: str, username: str) -> Iterator[tuple[Page, list[str]]]:
    """The page at ``url``'s plan list after signing in, and the problems seen so far."""
    problems: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            problems.append(f"left the machine: {r.request.url}")
            r.abort()

    with sync_playwright() as p:
        browser: Browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 860}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.route("**/*", route)
        # A split is seconds of work on the server; on a machine busy with other jobs it has
        # taken over 30 s, Playwright's default wait for the page that follows.
        context.set_default_navigation_timeout(120_000)
        pg = context.new_page()
        pg.on("pageerror", lambda e: problems.append(f"js: {e}"))
        pg.goto(f"{url}/login?next=%2Fapp%2Fplans")
        pg.fill("#username", username)
        pg.fill("#password", PASSWORD)
        pg.click("button[type=submit]")
        try:
            pg.wait_for_url(f"{url}/app/plans", timeout=15000)
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / "planner-login-failed.png"))
            raise AssertionError(f"sign-in did not reach /app/plans: {pg.url}") from None
        try:
            yield pg, problems
        finally:
            browser.close()
