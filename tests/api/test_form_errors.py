"""A refused form comes back as the form: the reason beside its field (tied to it by
``aria-describedby``, the field marked ``aria-invalid``), what was typed kept, nothing stored;
not an error page that loses the typing. The report form, the enrol form and publishing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, count, make_app, sign_in
from tests.gridded import Gridded

BROWSER = {"Accept": "text/html", "Accept-Language": "en"}


class _Fields(HTMLParser):
    """Every element with an id: its tag, its attributes, and where it starts in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, tuple[str, dict[str, str | None], int]] = {}
        self.starts: list[tuple[str, int]] = []  # (tag, position) of each form control

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        at = self._at()
        if found.get("id"):
            self.by_id[str(found["id"])] = (tag, found, at)
        if tag in ("input", "select", "textarea", "button", "label"):
            self.starts.append((tag, at))

    def _at(self) -> int:
        line, column = self.getpos()
        return line * 100_000 + column


def _beside(page: str, field_id: str) -> str:
    """The message shown for ``field_id``, checked to be tied to it and placed beside it:
    after the field and before the next label of the form."""
    fields = _Fields()
    fields.feed(page)
    assert field_id in fields.by_id, f"no #{field_id} on the page"
    _tag, attrs, at = fields.by_id[field_id]
    described = str(attrs.get("aria-describedby") or "")
    assert attrs.get("aria-invalid") == "true", attrs
    assert described, f"#{field_id} points at no message"
    assert described in fields.by_id, f"#{field_id} points at a missing #{described}"
    message_at = fields.by_id[described][2]
    next_label = min((p for t, p in fields.starts if t == "label" and p > at), default=10**12)
    assert at < message_at < next_label, f"#{described} is not beside #{field_id}"
    match = re.search(rf'id="{described}"[^>]*>([^<]*)<', page)
    assert match is not None
    return match.group(1)


@pytest.fixture(scope="module")
def app(strips: Gridded) -> FastAPI:
    area = ((ScopeLevel.community, "131208"),)
    add_accounts(strips.engine, [Account("f-care", Role.care_staff, area)])
    return make_app(strips.engine)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _cases(strips: Gridded) -> int:
    return count(strips.engine, "SELECT count(*) FROM incident")


def test_a_refused_report_is_the_form_again_with_the_reason_beside_the_field(
    client: TestClient, strips: Gridded
) -> None:
    headers = {**sign_in(client, "g-coordinator"), **BROWSER}
    before = _cases(strips)
    # No place chosen: the reason under the place's control, the rest kept.
    sent = {"category": "street_light", "description": "灯不亮 at no. 12", "reporter_name": "Li"}
    r = client.post("/app/incidents/new", data=sent, headers=headers)
    assert r.status_code == 422
    assert "Pick the place on the map" in _beside(r.text, "locate")
    assert 'option value="street_light" selected' in r.text
    assert ">灯不亮 at no. 12</textarea>" in r.text
    assert 'value="Li"' in r.text
    # A place outside every grid: the use case's reason, with the place kept for the map.
    r = client.post(
        "/app/incidents/new", data={**sent, "lon": "10.0", "lat": "10.0"}, headers=headers
    )
    assert r.status_code == 422
    assert "outside every grid" in _beside(r.text, "locate")
    assert 'id="lon" value="10.0"' in r.text and 'id="lat" value="10.0"' in r.text
    # No category: beside the category.
    r = client.post("/app/incidents/new", data={**sent, "category": ""}, headers=headers)
    assert r.status_code == 422
    assert "Choose a category" in _beside(r.text, "category")
    assert _cases(strips) == before  # nothing of the refused reports stored


def test_a_refused_enrolment_keeps_the_typing_and_says_why_beside_the_device(
    client: TestClient, strips: Gridded
) -> None:
    headers = {**sign_in(client, "f-care"), **BROWSER}
    form = {
        "display_name": "王秀英",
        "household_code": "H-1",
        "device_id": "watch 1",  # a space: no watch app accepts it
        "datum": "gcj02",
        "consent_given_by": "本人",
        "consent_scope": "走失时定位",
    }
    r = client.post("/app/elders/new", data=form, headers=headers)
    assert r.status_code == 422
    assert "only letters, digits and signs" in _beside(r.text, "device_id")
    assert 'value="王秀英"' in r.text and 'value="watch 1"' in r.text
    assert '<option value="gcj02" selected>' in r.text
    assert 'id="gw-error"' not in r.text  # placed beside the field, not above the form
    # No household chosen: beside the household search.
    r = client.post("/app/elders/new", data={**form, "household_code": ""}, headers=headers)
    assert "Find and choose the home household" in _beside(r.text, "gw-hh-q")


def test_an_enrolment_names_the_watchs_coordinates_or_is_refused_beside_them(
    client: TestClient, strips: Gridded
) -> None:
    """A watch's datum guessed wrong puts every position hundreds of metres off, so the form
    offers no default (it offered WGS-84, while watches sold in China send GCJ-02): none
    chosen is refused beside the choice, with the rest kept, and nothing is enrolled."""
    headers = {**sign_in(client, "f-care"), **BROWSER}
    blank = client.get("/app/elders/new", headers=headers)
    assert '<option value="" selected>' in blank.text
    assert '<option value="wgs84" selected>' not in blank.text
    form = {"display_name": "李桂兰", "household_code": "H-1", "device_id": "w-datum-1"}
    for sent in (form, {**form, "datum": ""}, {**form, "datum": "utm"}):
        r = client.post("/app/elders/new", data=sent, headers=headers)
        assert r.status_code == 422, r.text[-300:]
        assert "Choose which coordinates the watch sends" in _beside(r.text, "datum")
        assert 'value="w-datum-1"' in r.text
    with strips.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM device WHERE device_code = 'w-datum-1'")
            ).scalar()
            == 0
        )


def test_a_refused_publish_is_the_editor_with_the_reason_beside_the_date(
    client: TestClient, strips: Gridded
) -> None:
    headers = {**sign_in(client, "g-planner"), **BROWSER}
    plan = client.post("/plans", json={"community": "131208"}, headers=sign_in(client, "g-planner"))
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["id"]
    r = client.post(f"/app/plans/{plan_id}/publish", data={"effective": ""}, headers=headers)
    assert r.status_code == 422
    assert "Choose the day it takes effect" in _beside(r.text, "effective")
    assert 'id="workspace"' in r.text  # the editor itself, not an error page
    with strips.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM plan WHERE id = :p"), {"p": plan_id})
        assert status.scalar_one() == "draft"


def _plans(strips: Gridded) -> int:
    return count(strips.engine, "SELECT count(*) FROM plan")


def test_a_refused_split_is_the_plans_page_with_the_reason_beside_the_field(
    client: TestClient, strips: Gridded
) -> None:
    """A number box lets a browser send a variant number past the splitter's 32 bits; the
    page answered an error page naming the field in English ("seed")."""
    planner = sign_in(client, "g-planner")
    before = _plans(strips)
    for seed, en, zh in (
        (
            "99999999999",
            "Variant number: from 0 to 2147483647.",
            "生成序号：0 到 2147483647 之间。",
        ),
        ("-1", "Variant number: from 0 to 2147483647.", "生成序号：0 到 2147483647 之间。"),
        ("abc", "Variant number: a whole number.", "生成序号：须为整数。"),
    ):
        for language, said in (("en", en), ("zh-CN", zh)):
            r = client.post(
                "/app/plans",
                data={"community": "131208", "seed": seed},
                headers={**planner, "Accept": "text/html", "Accept-Language": language},
            )
            assert r.status_code == 422, r.text[:300]
            assert _beside(r.text, "new-plan-seed") == said
            assert f'value="{seed}"' in r.text  # what was typed, to correct
            assert '<option value="131208" selected>' in r.text
            assert 'id="oversize"' in r.text  # the plans page itself, not an error page
    # A community outside the planner's area, sent by hand: beside the community, in zh.
    r = client.post(
        "/app/plans",
        data={"community": "131213", "seed": "1"},
        headers={**planner, "Accept": "text/html", "Accept-Language": "zh-CN"},
    )
    assert r.status_code == 422
    assert _beside(r.text, "new-plan-community") == "您的辖区内没有社区“131213”"
    assert _plans(strips) == before  # nothing drafted by a refused split
    # The API keeps its English reason and its 404 (tests/api/test_said.py's rule).
    r = client.post("/plans", json={"community": "131213"}, headers=planner)
    assert r.status_code == 404 and r.json()["field"] == "community"
    assert r.json()["detail"] == "community: no community '131213' in your area"
    ok = client.post(
        "/app/plans",
        data={"community": "131208", "seed": "7"},
        headers=planner,
        follow_redirects=False,
    )
    assert ok.status_code == 303 and _plans(strips) == before + 1


def test_refusals_from_the_domain_are_said_in_chinese_beside_the_field(
    client: TestClient, strips: Gridded
) -> None:
    """Issue 15: the use case's reason in the page's language (tests/api/test_said.py: the
    error's English, which the JSON API answers, is unchanged)."""
    zh = {"Accept": "text/html", "Accept-Language": "zh-CN"}
    coordinator = sign_in(client, "g-coordinator")
    sent = {"category": "street_light", "description": "灯不亮", "lon": "10.0", "lat": "10.0"}
    r = client.post("/app/incidents/new", data=sent, headers={**coordinator, **zh})
    assert r.status_code == 422
    assert "该地点不在任何网格内" in _beside(r.text, "locate")
    assert "outside every grid" not in r.text
    form = {
        "display_name": "王秀英",
        "household_code": "H-NOPE",
        "device_id": "w-zh-1",
        "datum": "gcj02",
    }
    r = client.post("/app/elders/new", data=form, headers={**sign_in(client, "f-care"), **zh})
    assert r.status_code == 422
    assert "您的辖区内没有住户“H-NOPE”" in _beside(r.text, "gw-hh-q")
    planner = sign_in(client, "g-planner")
    plan = client.post("/plans", json={"community": "131208"}, headers=planner)
    assert plan.status_code == 201, plan.text
    r = client.post(
        f"/app/plans/{plan.json()['id']}/publish",
        data={"effective": "2000-01-01"},
        headers={**planner, **zh},
    )
    assert r.status_code == 422
    assert re.search(r"生效日期 2000-01-01 早于现行网格的生效日期 \d{4}-\d\d-\d\d", r.text)


def test_a_nul_in_an_enrolment_is_refused_by_name_and_nothing_is_stored(
    client: TestClient, strips: Gridded
) -> None:
    """The enrolment form is multipart (it may carry a consent scan): a NUL in the name reached
    PostgreSQL and answered 500. Refused before any route runs, it is still a page for a
    browser, in the caller's frame and language (it was problem JSON); JSON for the API."""
    care = sign_in(client, "f-care")
    headers = {**care, **BROWSER}
    with strips.engine.connect() as conn:  # a household of her area: nothing else refused
        home = conn.execute(
            text(
                "SELECT h.code FROM household h JOIN grid g ON g.id = h.grid_id "
                "WHERE g.code LIKE '131208-%' ORDER BY h.code LIMIT 1"
            )
        ).scalar_one()
    form = {
        "display_name": "李\x00兰",
        "household_code": home,
        "device_id": "w-nul-1",
        "datum": "gcj02",
        "consent_given_by": "本人",
        "consent_given_on": "2026-01-05",
        "consent_scope": "走失时定位",
    }
    r = client.post("/app/elders/new", data=form, files={"scan": ("", b"")}, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "display_name: contains a NUL character, which cannot be stored" in _problem(r.text)
    assert '<span class="user">f-care</span>' in r.text  # signed in: the frame's navigation
    zh = {**care, "Accept": "text/html", "Accept-Language": "zh-CN"}
    r = client.post("/app/elders/new", data=form, files={"scan": ("", b"")}, headers=zh)
    assert r.status_code == 422 and "含有无法保存的空字符" in _problem(r.text)
    r = client.post("/app/elders/new", data=form, files={"scan": ("", b"")}, headers=care)
    assert r.status_code == 422 and r.json()["field"] == "display_name"
    with strips.engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM device WHERE device_code = 'w-nul-1'"))
        assert stored.scalar() == 0


def _problem(page: str) -> str:
    """The error page's message."""
    match = re.search(r'<p class="problem" role="alert">([^<]*)</p>', page)
    assert match is not None, page[:500]
    return match.group(1)


def test_a_photo_over_the_body_limit_is_a_page_saying_so(client: TestClient) -> None:
    """A phone's 12 MB photo passes no route: the body limit refuses it first. A browser got
    the problem JSON, in English; it gets the error page in its frame and language now."""
    worker = sign_in(client, "g-coordinator")
    big = {"photo": ("IMG_0001.jpg", b"\xff" * (11 * 1024 * 1024), "image/jpeg")}
    sent = {"category": "street_light", "description": "灯不亮", "lon": "-8.61", "lat": "41.14"}
    zh = {**worker, "Accept": "text/html", "Accept-Language": "zh-CN"}
    r = client.post("/app/incidents/new", data=sent, files=big, headers=zh)
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert "超过 10 MB（10485760 字节）的上限" in _problem(r.text)
    assert '<span class="user">g-coordinator</span>' in r.text
    r = client.post("/app/incidents/new", data=sent, files=big, headers=worker)
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert r.json()["detail"].startswith("body: larger than the limit of 10485760 bytes")


def test_a_community_without_buildings_is_refused_beside_the_community_in_zh(
    client: TestClient, strips: Gridded
) -> None:
    """A community imported without its buildings cannot be split: the plans page said so
    in English beside the community ("community 'X' has no buildings to plan with")."""
    with strips.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO community (code, name, kind, street_id, geom) "
                "SELECT 'NOBLDG', 'Empty', kind, street_id, "
                "ST_Buffer(ST_Translate(ST_PointOnSurface(geom), 0.5, 0), 0.0005) "
                "FROM community WHERE code = '131208'"
            )
        )
        conn.execute(
            text(
                "INSERT INTO user_scope (user_id, level, code) SELECT id, 'community', 'NOBLDG' "
                "FROM app_user WHERE username = 'g-planner'"
            )
        )
    try:
        r = client.post(
            "/app/plans",
            data={"community": "NOBLDG", "seed": "1"},
            headers={
                **sign_in(client, "g-planner"),
                "Accept": "text/html",
                "Accept-Language": "zh-CN",
            },
        )
        assert r.status_code == 422, r.text[-400:]
        said = _beside(r.text, "new-plan-community")
        assert said == "社区“NOBLDG”没有可用于规划的建筑：请先导入建筑", said
    finally:
        with strips.engine.begin() as conn:
            conn.execute(text("DELETE FROM user_scope WHERE code = 'NOBLDG'"))
            conn.execute(text("DELETE FROM community WHERE code = 'NOBLDG'"))
