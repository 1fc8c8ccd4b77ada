"""The frame every page lives in, as a browser sees it: sign-in redirects, language, the
navigation of each role, and errors as pages (API clients keep problem+json)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.pages.catalog import extract, is_translated, key, read
from api.pages.frame import PageContext, area_label, map_nav_for, nav_for, ngettext
from api.principals import Principal
from data.access.queries import AreaScope
from data.models import Role
from tests.api.conftest import STAFF

ROOT = Path(__file__).resolve().parents[2]
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_every_page_string_has_a_chinese_translation() -> None:
    """A string added to a page without a zh_CN entry fails here (scripts/translate.py)."""
    wanted = {key(m) for m in extract() if m.id}
    translated = {key(m) for m in read("zh_CN") if is_translated(m)}
    assert wanted - translated == set()


def test_no_page_string_is_marked_inside_an_f_string() -> None:
    """Babel's extractor does not look inside f-strings, so ``f"{_('open')} …"`` never
    reached the catalog and stayed English on a Chinese page (the workload map's classes, the
    coverage map's walking area). Such a message is one whole id with its placeholders."""
    found = []
    for path in sorted([*ROOT.glob("api/**/*.py"), *ROOT.glob("maps/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.JoinedStr):
                continue
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and _is_gettext(call.func):
                    found.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert found == []


def _is_gettext(func: ast.expr) -> bool:
    names = ("_", "N_", "gettext", "ngettext")
    if isinstance(func, ast.Name):
        return func.id in names
    return isinstance(func, ast.Attribute) and func.attr in names


def test_a_signed_out_browser_is_sent_to_sign_in_and_an_api_client_gets_401(
    anonymous: TestClient,
) -> None:
    r = anonymous.get("/maps/grids?x=1", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fmaps%2Fgrids%3Fx%3D1"
    api = anonymous.get("/maps/grids", headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")


def test_signing_in_from_the_form_returns_to_next(porto_app: FastAPI) -> None:
    with TestClient(porto_app) as browser:
        form = browser.get("/login?next=%2Fmaps%2Fworkload", headers=BROWSER)
        assert 'name="next" value="/maps/workload"' in form.text
        r = browser.post(
            "/login",
            data={
                "username": STAFF["coordinator"].username,
                "password": "correct horse battery staple",
                "next": "/maps/workload",
            },
            headers=BROWSER,
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/maps/workload"
        # Never an open redirect to another site.
        r = browser.get("/lang?l=en&next=//evil.example/x", follow_redirects=False)
        assert r.headers["location"] == "/"


def test_the_page_language_follows_choice_then_browser_then_deployment(
    porto_app: FastAPI, tokens: dict[str, dict[str, str]]
) -> None:
    with TestClient(porto_app, headers=tokens["coordinator"]) as c:
        zh = c.get("/", headers={**BROWSER, "Accept-Language": "zh-CN,zh;q=0.9"})
        assert '<html lang="zh-CN">' in zh.text
        assert "今日工作" in zh.text and "退出登录" in zh.text
        en = c.get("/", headers={**BROWSER, "Accept-Language": "en-GB,en;q=0.9"})
        assert '<html lang="en">' in en.text and "Today" in en.text
        # No preference the app has: the deployment's language (GRIDWORK_LOCALE, zh_CN).
        fr = c.get("/", headers={**BROWSER, "Accept-Language": "fr-FR"})
        assert "今日工作" in fr.text
        # The user's choice wins over the browser's.
        c.get("/lang?l=en&next=/", follow_redirects=False)
        chosen = c.get("/", headers={**BROWSER, "Accept-Language": "zh-CN"})
        assert "Today" in chosen.text
        assert "Asia/Shanghai" in chosen.text  # times are said to be in the deployment's zone


def test_no_role_is_offered_a_link_it_may_not_open(
    porto_app: FastAPI, tokens: dict[str, dict[str, str]]
) -> None:
    """Every navigation entry shown to a role opens for that role (no 401/403)."""
    for who in ("admin", "planner", "coordinator", "care_staff"):
        role = STAFF[who].role
        principal = Principal(who, role, None, AreaScope.everywhere(), "token")
        items = nav_for(principal) + map_nav_for(principal)  # the maps' bar too
        assert items, who
        with TestClient(porto_app, headers=tokens[who]) as c:
            for item in items:
                r = c.get(item.href, headers=BROWSER, follow_redirects=False)
                assert r.status_code not in (401, 403), (who, item.href, r.status_code)
    device = Principal("watch", Role.device, None, AreaScope.everywhere(), "api_key")
    assert nav_for(device) == []


def test_a_browser_gets_errors_as_pages_in_its_language(
    porto_app: FastAPI, tokens: dict[str, dict[str, str]]
) -> None:
    with TestClient(porto_app, headers=tokens["care_staff"]) as c:
        page = c.get("/checks", headers={**BROWSER, "Accept-Language": "zh-CN"})
        assert page.status_code == 403
        assert page.headers["content-type"].startswith("text/html")
        assert "无权访问" in page.text and "返回首页" in page.text
        api = c.get("/checks")
        assert api.status_code == 403
        assert api.headers["content-type"].startswith("application/problem+json")


def test_a_refused_address_is_said_in_the_pages_language(
    porto_app: FastAPI, tokens: dict[str, dict[str, str]]
) -> None:
    """A hand-edited URL (days=0, a word for a number) is refused with the field and the
    reason in the page's language; the API keeps pydantic's English."""
    with TestClient(porto_app, headers=tokens["coordinator"]) as c:
        said = {}
        for lang in ("zh-CN", "en"):
            page = c.get("/maps/incidents?days=0", headers={**BROWSER, "Accept-Language": lang})
            assert page.status_code == 422
            said[lang] = page.text
        assert "days: 不能小于 1" in said["zh-CN"] and "Input should" not in said["zh-CN"]
        assert "days: must be at least 1" in said["en"]
        page = c.get("/maps/incidents?days=many", headers={**BROWSER, "Accept-Language": "zh-CN"})
        assert "days: 必须是整数" in page.text
        api = c.get("/maps/incidents?days=0", headers={"Accept": "application/json"})
        assert api.status_code == 422 and "greater than or equal to 1" in api.text


def test_an_unknown_address_is_a_page_for_a_browser_and_json_for_a_client(
    porto_app: FastAPI, tokens: dict[str, dict[str, str]]
) -> None:
    with TestClient(porto_app, headers=tokens["coordinator"]) as c:
        page = c.get("/no/such/page", headers={**BROWSER, "Accept-Language": "zh-CN"})
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "此地址没有页面" in page.text and "返回首页" in page.text  # and a way back
        api = c.get("/no/such/page")
        assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("communities", "grids", "en", "zh"),
    [
        (0, 1, "1 grid", "1 个网格"),
        (0, 3, "3 grids", "3 个网格"),
        (1, 1, "1 community, 1 grid", "1 个社区，1 个网格"),
        (1, 5, "1 community, 5 grids", "1 个社区，5 个网格"),
        (4, 20, "4 communities, 20 grids", "4 个社区，20 个网格"),
        (0, 0, "no area assigned yet", "尚未分配辖区"),
    ],
)
def test_the_headers_area_is_said_as_people_count_it(
    communities: int, grids: int, en: str, zh: str
) -> None:
    """A grid worker's area is their grids (not "0 communities"); one is not "1 grids"."""
    scope = AreaScope(
        frozenset(),
        frozenset(range(communities)),
        frozenset(range(grids)),
        frozenset(range(communities)),
    )
    who = Principal("someone", Role.coordinator, 1, scope, "cookie")
    said = {
        lang: area_label(PageContext(lang, "Asia/Shanghai", who, "/")) for lang in ("en", "zh_CN")
    }
    assert said == {"en": en, "zh_CN": zh}


def test_a_count_is_said_in_the_form_its_number_takes() -> None:
    """The case list said "1 cases", a household "1 people", an elder "1 days ago". Plurals
    come from the catalog's plural entries (Chinese has one form, English two)."""
    one, many = "%(num)s case", "%(num)s cases"
    assert [ngettext("en", one, many, n) for n in (0, 1, 2)] == ["0 cases", "1 case", "2 cases"]
    assert [ngettext("zh_CN", one, many, n) for n in (1, 7)] == ["共 1 件", "共 7 件"]
    said = ngettext("en", "%(code)s · %(num)s person", "%(code)s · %(num)s people", 1, code="H1")
    assert said == "H1 · 1 person"
    plurals = [m for m in read("zh_CN") if isinstance(m.id, tuple)]
    assert len(plurals) >= 8 and all(is_translated(m) for m in plurals)
