"""An unknown address, as a signed-in browser meets it: no route ran, so no route checked the
caller; the page must still be drawn in their frame (navigation, role), not as a visitor's."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.security import COOKIE
from tests.api.conftest import PASSWORD, STAFF

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en"}


def test_a_signed_in_browser_keeps_its_navigation_on_an_unknown_address(
    porto_app: FastAPI,
) -> None:
    with TestClient(porto_app) as browser:
        r = browser.post(
            "/login",
            data={"username": STAFF["coordinator"].username, "password": PASSWORD, "next": "/"},
            headers=BROWSER,
            follow_redirects=False,
        )
        assert r.status_code == 303  # signed in by the cookie, as a browser is
        page = browser.get("/no/such/page", headers=BROWSER)
        assert page.status_code == 404
        assert "There is no page at this address." in page.text
        assert '<nav class="main"' in page.text
        assert 'href="/maps/hierarchy"' in page.text  # the coordinator's entries: the maps
        assert 'href="/app/incidents/mine"' in page.text  # and their cases
        assert 'href="/app/plans"' not in page.text  # and not a planner's
        assert STAFF["coordinator"].username in page.text and "Coordinator" in page.text


def test_a_visitor_or_a_bad_cookie_gets_the_page_without_navigation(porto_app: FastAPI) -> None:
    with TestClient(porto_app) as visitor:
        page = visitor.get("/no/such/page", headers=BROWSER)
        assert page.status_code == 404 and '<nav class="main"' not in page.text
        visitor.cookies.set(COOKIE, "not-a-token")
        page = visitor.get("/no/such/page", headers=BROWSER)
        assert page.status_code == 404 and '<nav class="main"' not in page.text
        assert "There is no page at this address." in page.text


def test_a_missing_record_leads_back_to_its_section_in_the_pages_language(
    porto_app: FastAPI,
) -> None:
    """A plan that is gone (an old link, a mistyped number) offered only the start page, and
    said so in English on a Chinese page; the page now says it in the page's language and leads
    back to the plans first, named as the navigation names them."""
    with TestClient(porto_app) as browser:
        browser.post(
            "/login",
            data={"username": STAFF["planner"].username, "password": PASSWORD, "next": "/"},
            headers=BROWSER,
            follow_redirects=False,
        )
        page = browser.get("/app/plans/999999", headers=BROWSER)
        assert page.status_code == 404
        assert '<a href="/app/plans" id="gw-back">Back to Grid plans</a>' in page.text
        zh = browser.get("/app/plans/999999", headers={**BROWSER, "Accept-Language": "zh-CN"})
        assert '<a href="/app/plans" id="gw-back">返回网格规划</a>' in zh.text
        assert 'role="alert">没有第 999999 号方案</p>' in zh.text  # it said "plan: no plan 999999"
        assert 'id="gw-back"' not in browser.get("/no/such/page", headers=BROWSER).text
