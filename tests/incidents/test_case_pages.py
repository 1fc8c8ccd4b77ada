"""The case pages as their users drive them over HTTP: a grid worker reports from the form,
accepts on the case page, sees "my cases"; the coordinator's list marks overdue cases; the
figures page; home cards and navigation."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.pages.frame import gettext
from api.routers.case_pages import LEVEL_NAMES, SOURCE_NAMES, STATUS_NAMES, SYSTEM_NOTES
from data.db import transaction
from data.incidents import queries as q
from data.incidents.queries import HISTORY_KINDS
from geo.incidents import rules
from geo.incidents.rules import LEVELS, MOVES, STATUSES
from tests.incidents.conftest import inside

Auth = dict[str, dict[str, str]]
HTML = {"Accept": "text/html"}


def _report_form(client: TestClient, auth: Auth, engine: Engine, **extra: str) -> int:
    lon, lat = inside(engine, "131208-G01")
    form = {"category": "street_light", "description": "lamp out at the corner"}
    form |= {"lon": str(lon), "lat": str(lat)} | extra
    r = client.post(
        "/app/incidents/new", data=form, headers=auth["worker"] | HTML, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/app/incidents/(\d+)", r.headers["location"])
    assert found
    return int(found.group(1))


def test_report_accept_and_history_on_the_page(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    r = client.get("/app/incidents/new", headers=auth["worker"] | HTML)
    assert r.status_code == 200
    options = r.text[r.text.index('<select id="category"') : r.text.index("</select>")]
    assert 'value="street_light"' in options and 'value="elder_visit"' in options
    assert not re.search(r"religio|ethnic|belief|politic|宗教|民族|信仰|政治", options, re.I)
    assert "data-centre=" in r.text
    cid = _report_form(client, auth, cases_engine)
    page = client.get(f"/app/incidents/{cid}", headers=auth["worker"] | HTML)
    assert page.status_code == 200
    assert "lamp out at the corner" in page.text and 'value="accept"' in page.text
    r = client.post(
        f"/app/incidents/{cid}/act",
        data={"action": "accept"},
        headers=auth["worker"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/app/incidents/{cid}", headers=auth["worker"] | HTML)
    assert 'value="accept"' not in page.text and 'value="start"' in page.text
    assert page.text.count("<li><time>") == 2  # reported, accepted
    mine = client.get("/app/incidents/mine", headers=auth["worker"] | HTML)
    assert f"/app/incidents/{cid}" in mine.text
    # The coordinator sees who holds it by the worker's name, not the account's username.
    with cases_engine.connect() as conn:
        name = conn.execute(
            text("SELECT display_name FROM worker WHERE code = 'W-131208-G01'")
        ).scalar_one()
    listed = client.get("/app/incidents", headers=auth["community"] | HTML).text
    row = listed[listed.index(f'href="/app/incidents/{cid}"') :]
    row = row[: row.index("</tr>")]
    assert f">{html.escape(name)}</td>" in row and "c-worker" not in row, row
    page = client.get(f"/app/incidents/{cid}", headers=auth["community"] | HTML)
    facts = re.search(r'<dl class="facts">.*?</dl>', page.text, re.S)
    assert facts and html.escape(name) in facts.group(0) and "c-worker" not in facts.group(0)


def test_the_form_refuses_a_report_without_a_place(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    with cases_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one()
    r = client.post(
        "/app/incidents/new",
        data={"category": "rubbish", "description": "bags", "lon": "", "lat": ""},
        headers=auth["worker"] | HTML,
    )
    assert r.status_code == 422 and "lon" in r.text
    with cases_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_case")).scalar_one() == before


def test_overdue_cases_are_red_in_the_list(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    cid = _report_form(client, auth, cases_engine)
    with cases_engine.begin() as conn:
        conn.execute(
            text("UPDATE incident_case SET due_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": cid},
        )
    r = client.get("/app/incidents?due=overdue", headers=auth["community"] | HTML)
    assert r.status_code == 200
    row = re.search(rf'<tr class="([^"]*)">\s*<td[^>]*><a href="/app/incidents/{cid}">', r.text)
    assert row and row.group(1) == "overdue"
    r = client.get("/app/incidents?status=closed", headers=auth["community"] | HTML)
    assert f'href="/app/incidents/{cid}"' not in r.text
    assert (
        client.get(f"/app/incidents/{cid}", headers=auth["other_worker"] | HTML).status_code == 404
    )
    # The case page says it as the list does: overdue, and due soon within a day.
    en = auth["community"] | HTML | {"Accept-Language": "en"}
    page = client.get(f"/app/incidents/{cid}", headers=en).text
    assert re.search(r'<dd class="problem">[^<]* — overdue</dd>', page)
    with cases_engine.begin() as conn:
        conn.execute(
            text("UPDATE incident_case SET due_at = now() + interval '3 hours' WHERE id = :i"),
            {"i": cid},
        )
    page = client.get(f"/app/incidents/{cid}", headers=en).text
    assert re.search(r'<dd class="">[^<]* <span class="soon">due soon</span></dd>', page)


def _miragaia_and_its_street(engine: Engine) -> tuple[str, str, str]:
    """Community 131208's name, and its street's code and name, as stored."""
    with engine.connect() as conn:
        community, street_code, street = conn.execute(
            text(
                "SELECT m.name, s.code, s.name FROM community m JOIN street s "
                "ON s.id = m.street_id WHERE m.code = '131208'"
            )
        ).one()
    return str(community), str(street_code), str(street)


def test_figures_page_and_home(client: TestClient, auth: Auth, cases_engine: Engine) -> None:
    _report_form(client, auth, cases_engine)
    r = client.get("/app/incidents/figures?level=grid", headers=auth["community"] | HTML)
    assert r.status_code == 200 and "131208-G01" in r.text
    # A community and a street read by their names beside their codes, not codes alone.
    community, street_code, street = _miragaia_and_its_street(cases_engine)
    for level, name, code in (("community", community, "131208"), ("street", street, street_code)):
        page = client.get(f"/app/incidents/figures?level={level}", headers=auth["community"] | HTML)
        lead = re.search(r'<td class="lead">(.*?)</td>', page.text)
        assert lead and lead.group(1) == (
            f'{html.escape(name)} <span class="muted code">{code}</span>'
        ), (level, lead and lead.group(1))
    home = client.get("/", headers=auth["community"] | HTML)
    assert 'href="/app/incidents?status=open"' in home.text and 'href="/app/incidents"' in home.text
    home = client.get("/", headers=auth["worker"] | HTML)
    assert 'href="/app/incidents/mine"' in home.text
    home = client.get("/", headers=auth["planner"] | HTML)
    assert 'href="/app/incidents/mine"' not in home.text
    assert client.get("/app/incidents/mine", headers=auth["planner"] | HTML).status_code == 403


def _cards(page: str) -> list[tuple[str, int | None, str]]:
    """The home page's cards in order: title, number (if any), text."""
    found = re.findall(
        r'<article class="card">\s*<h2>(.*?)</h2>\s*(?:<div class="num">(\d+)</div>)?'
        r'\s*(?:<p class="muted">(.*?)</p>)?',
        page,
    )
    return [(html.unescape(t), int(n) if n else None, html.unescape(x)) for t, n, x in found]


@contextmanager
def _overdue(engine: Engine, case_id: int) -> Iterator[None]:
    """The case overdue by an hour while the block runs; its deadline back after."""
    with engine.begin() as conn:
        due = conn.execute(
            text("SELECT due_at FROM incident_case WHERE id = :i"), {"i": case_id}
        ).scalar_one()
        conn.execute(
            text("UPDATE incident_case SET due_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": case_id},
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE incident_case SET due_at = :d WHERE id = :i"),
                {"d": due, "i": case_id},
            )


def _mine(client: TestClient, headers: dict[str, str]) -> tuple[int, int]:
    """How many cases "my cases" lists, and how many of them it marks overdue."""
    page = client.get("/app/incidents/mine", headers=headers).text
    items = re.findall(r'<li class="([^"]*)">\s*<a href="/app/incidents/\d+">', page)
    return len(items), items.count("overdue")


def test_a_grid_workers_home_counts_what_waits_before_the_maps(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    en = auth["worker"] | HTML | {"Accept-Language": "en"}
    cid = _report_form(client, auth, cases_engine)
    listed, overdue = _mine(client, en)
    assert listed >= 1
    cards = _cards(client.get("/", headers=en).text)
    titles = [t for t, _, _ in cards]
    assert titles.index("My incidents") < titles.index("Maps of your area"), titles
    mine = titles.index("My incidents")
    assert cards[mine][1] == listed, (cards[mine], listed)
    if not overdue:
        assert cards[mine][2] == "Cases waiting for you, deadlines first."
    with _overdue(cases_engine, cid):
        listed, overdue = _mine(client, en)
        assert overdue >= 1
        cards = _cards(client.get("/", headers=en).text)
        assert cards[mine][1:] == (
            listed,
            f"Cases waiting for you, deadlines first. Overdue: {overdue}.",
        )
        zh = auth["worker"] | HTML | {"Accept-Language": "zh-CN"}
        assert f"已超期：{overdue} 件" in _cards(client.get("/", headers=zh).text)[mine][2]
        # Each case's deadline is labelled as each language writes it ("办理期限：", no
        # ASCII colon and space inside Chinese).
        assert "<div>Deadline: " in client.get("/app/incidents/mine", headers=en).text
        mine_zh = client.get("/app/incidents/mine", headers=zh).text
        assert "<div>办理期限：" in mine_zh and "办理期限: " not in mine_zh
    # The worker has an area: the vector-tile viewer would send them to the grid map.
    home = client.get("/", headers=en).text
    assert 'href="/viewer"' not in home and 'href="/maps/grids"' in home


def _listed(client: TestClient, headers: dict[str, str], query: str) -> int:
    """How many cases the coordinator's list shows for ``query``."""
    page = client.get(f"/app/incidents?{query}", headers=headers).text
    return len(re.findall(r'<tr class="[^"]*">\s*<td[^>]*><a href="/app/incidents/\d+">', page))


def test_a_coordinators_home_counts_the_open_and_overdue_cases_of_the_area(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    en = auth["community"] | HTML | {"Accept-Language": "en"}
    cid = _report_form(client, auth, cases_engine)
    cards = _cards(client.get("/", headers=en).text)
    titles = [t for t, _, _ in cards]
    card = titles.index("Open incidents")
    assert card < titles.index("Maps of your area")
    assert cards[card][1] == _listed(client, en, "status=open") >= 1
    with _overdue(cases_engine, cid):
        overdue = _listed(client, en, "due=overdue")
        assert overdue >= 1
        said = _cards(client.get("/", headers=en).text)[card][2]
        assert said.endswith(f"overdue ones in red. Overdue: {overdue}."), said


def test_the_figures_say_a_short_resolution_in_minutes(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """A case resolved within the hour is said in minutes ("0.1 hours" read as nothing)."""
    cid = _report_form(client, auth, cases_engine)
    done = {"action": "resolve", "note": "lamp replaced"}
    r = client.post(
        f"/app/incidents/{cid}/act",
        data=done,
        headers=auth["worker"] | HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get(
        "/app/incidents/figures?level=grid&code=131208-G01",
        headers=auth["community"] | HTML | {"Accept-Language": "en"},
    ).text
    row = page[page.index('<td class="lead"><span class="code">131208-G01</span></td>') :]
    cells = dict(re.findall(r'<td data-label="([^"]+)">([^<]*)</td>', row[: row.index("</tr>")]))
    typical = cells["Typical time to resolve"]
    assert re.fullmatch(r"1 minute|\d+ minutes", typical), typical
    zh = client.get(
        "/app/incidents/figures?level=grid&code=131208-G01",
        headers=auth["community"] | HTML | {"Accept-Language": "zh-CN"},
    ).text
    assert re.search(r"<td[^>]*>\d+ 分钟</td>", zh)
    # The level chooser says what the rows are per, not "made by" (制定人, the plans' "By").
    assert "<label>统计单位" in zh and "制定人" not in zh


def _history_items(page: str) -> list[dict[str, Any]]:
    """Each entry of the page's history: its title, its moves (from → to) and its note."""
    start = page.index('<ol class="history">')
    section = page[start : page.index("</ol>", start)]
    items = []
    for li in re.findall(r"<li>(.*?)</li>", section, re.S):
        moves = re.findall(r'<span class="muted">(.*?) → (.*?)</span>', li)
        note = re.search(r'<div class="note">(.*?)</div>', li, re.S)
        items.append(
            {
                "title": html.unescape(re.search(r"<strong>(.*?)</strong>", li).group(1)),  # type: ignore[union-attr]
                "words": [html.unescape(w) for pair in moves for w in pair if w],
                "note": html.unescape(note.group(1)) if note else None,
            }
        )
    return items


def test_every_history_kind_and_status_is_said_in_words(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """A case whose history holds every kind of entry, every status and every level, as the
    writers of the flow write them: on the page (zh-CN and English) each is in words of the
    page's language, never its identifier; so are the notes gridwork writes itself."""
    cid = _report_form(client, auth, cases_engine)  # "reported", new at grid level
    t = datetime.now(UTC)

    def entry(kind: str, **values: Any) -> None:
        nonlocal t
        t += timedelta(minutes=1)
        q.add_event(session, cid, at=t, kind=kind, **({"actor": "c-worker"} | values))

    with transaction(cases_engine) as session:
        status = "new"
        for action in MOVES:  # accept, start, resolve, close, reopen: every status
            to = rules.move(status, action)
            entry(action, from_status=status, to_status=to, note="done on site")
            status = to
        for i, (low, high) in enumerate(itertools.pairwise(LEVELS)):  # every level
            by = {"actor": "system", "note": "deadline passed"} if i else {"note": "too big"}
            entry("escalated", from_status=status, to_status="new", from_level=low,
                  to_level=high, **by)  # fmt: skip
            status = "new"
        entry("to_department", note="WATER: valve")
        entry("from_department", note="WATER: valve replaced")
        entry("handed_over", actor="c-planner", from_status=status, to_status="new",
              note="131208-G01")  # fmt: skip
        entry("photo", note="photo 7")
        entry("duplicate_of", note="#1")
        entry("duplicate_linked", note="#2")
        entry("media_url", note="https://photos.example.org/leak.jpg")
        entry("address", note="Rua Nova 1")
        entry("address_id", note="way/123")
        kinds = {h["kind"] for h in q.history(session, cid)}
    assert kinds == set(HISTORY_KINDS)  # the case holds every kind there is

    raw = {*HISTORY_KINDS, *STATUSES, *LEVELS, *SOURCE_NAMES, *SYSTEM_NOTES}
    for locale in ("zh-CN", "en"):
        page = client.get(
            f"/app/incidents/{cid}", headers=auth["community"] | HTML | {"Accept-Language": locale}
        )
        assert page.status_code == 200
        items = _history_items(page.text)
        assert len(items) == 1 + len(MOVES) + len(LEVELS) - 1 + 9
        titles = [i["title"] for i in items]
        assert len(set(titles)) == len(HISTORY_KINDS)  # each kind in its own words
        said = titles + [w for i in items for w in i["words"]]
        lang = "zh_CN" if locale == "zh-CN" else "en"
        statuses = {gettext(lang, STATUS_NAMES[s]) for s in STATUSES}
        levels = {gettext(lang, LEVEL_NAMES[s]) for s in LEVELS}
        assert {w for i in items for w in i["words"]} == statuses | levels
        notes = [i["note"] for i in items]
        ours = [notes[0], gettext(lang, SYSTEM_NOTES["deadline passed"])]  # gridwork's notes
        assert notes[0] == gettext(lang, SOURCE_NAMES["app"])
        assert notes.count(ours[1]) == len(LEVELS) - 2  # the sweep's escalations
        for word in said + ours:
            assert word not in raw and "_" not in word, (locale, word)
            if lang == "zh_CN":  # every word of the page's own: none left in English
                assert not re.search("[A-Za-z]", word), word


def _new_for_you(client: TestClient, headers: dict[str, str]) -> list[int]:
    """The cases listed under "New for you" on /app/incidents/mine, in order."""
    page = client.get("/app/incidents/mine", headers=headers | HTML).text
    found = re.search(r'<section class="notices">(.*?)</section>', page, re.S)
    return [int(n) for n in re.findall(r"/app/incidents/(\d+)", found.group(1))] if found else []


def _why_new(client: TestClient, headers: dict[str, str], language: str) -> dict[int, str]:
    """Why each case under "New for you" is listed, as the page says it in ``language``."""
    page = client.get(
        "/app/incidents/mine", headers=headers | HTML | {"Accept-Language": language}
    ).text
    found = re.findall(
        r'href="/app/incidents/(\d+)">[^<]*</a> <span class="muted">([^<]*) · ', page
    )
    return {int(case): why for case, why in found}


def test_new_for_you_lists_a_case_once_until_it_is_opened(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """Notices used to be read only through the API, so the page's list grew with every
    routing and hand-over, a case once per notice, and never emptied."""
    cid = _report_form(client, auth, cases_engine)  # routed to the worker: a notice
    with transaction(cases_engine) as session:  # and a second one, as a hand-over writes
        worker = q.find_user(session, "c-worker")
        assert worker is not None
        q.add_notice(session, cid, at=datetime.now(UTC), level="grid", kind="handed_over",
                     user_id=worker.id)  # fmt: skip
        # a notice to the community's staff, as an escalation writes
        q.add_notice(session, cid, at=datetime.now(UTC), level="community", kind="escalated")
    assert _new_for_you(client, auth["worker"]).count(cid) == 1
    assert cid in _new_for_you(client, auth["community"])
    # Each says why it is new for the reader (it said the level alone: "Grid · 12:36").
    assert _why_new(client, auth["worker"], "en")[cid] == "handed over to you"
    assert _why_new(client, auth["worker"], "zh-CN")[cid] == "已转交给您"
    assert _why_new(client, auth["community"], "zh-CN")[cid] == "已升级到社区"
    assert client.get(f"/app/incidents/{cid}", headers=auth["worker"] | HTML).status_code == 200
    assert cid not in _new_for_you(client, auth["worker"])
    # The worker read theirs; the community's staff have not opened it yet.
    assert cid in _new_for_you(client, auth["community"])
    assert client.get(f"/app/incidents/{cid}", headers=auth["community"] | HTML).status_code == 200
    assert cid not in _new_for_you(client, auth["community"])


def test_my_cases_put_a_case_nobody_took_by_its_deadline_among_mine(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """The home card says "deadlines first": a new case nobody has taken, due tomorrow, is
    listed before the worker's own case due next week, not after all of them."""
    own = _report_form(client, auth, cases_engine)
    untaken = _report_form(client, auth, cases_engine)
    with cases_engine.begin() as conn:
        conn.execute(
            text("UPDATE incident_case SET due_at = now() + interval '7 days' WHERE id = :i"),
            {"i": own},
        )
        conn.execute(
            text(
                "UPDATE incident_case SET assignee_id = NULL, "
                "due_at = now() + interval '1 day' WHERE id = :i"
            ),
            {"i": untaken},
        )
    page = client.get("/app/incidents/mine", headers=auth["worker"] | HTML).text
    found = re.findall(r'<li class="[^"]*">\s*<a href="/app/incidents/(\d+)"', page)
    listed = [int(i) for i in found]
    assert own in listed and untaken in listed, listed
    assert listed.index(untaken) < listed.index(own), listed
    with cases_engine.connect() as conn:
        due: dict[int, datetime] = dict(
            conn.execute(
                text("SELECT id, due_at FROM incident_case WHERE id = ANY(:ids)"), {"ids": listed}
            ).all()
        )
    assert [due[i] for i in listed] == sorted(due[i] for i in listed)


def _department_choice(client: TestClient, auth: Auth, case: int) -> tuple[str, list[str]]:
    """The case page's department chooser: its opening tag and the options selected."""
    page = client.get(f"/app/incidents/{case}", headers=auth["worker"] | HTML).text
    found = re.search(r'(<select name="department"[^>]*>)(.*?)</select>', page, re.S)
    assert found, "no department chooser"
    return found.group(1), re.findall(r'<option value="([^"]*)"[^>]*\bselected\b', found.group(2))


def test_handing_over_offers_the_categorys_department_and_never_a_silent_first(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """The chooser opened on the first department by name (消防, fire safety) whatever the
    case: one tap on "hand to a department" sent a broken street light to the firemen. It
    offers the category's own department; with none, nothing until one is chosen."""
    light = _report_form(client, auth, cases_engine)  # street_light: the URBAN department's
    tag, selected = _department_choice(client, auth, light)
    assert selected == ["URBAN"] and "required" in tag
    visit = _report_form(client, auth, cases_engine, category="elder_visit")  # no department
    tag, selected = _department_choice(client, auth, visit)
    assert selected == [""] and "required" in tag


def test_the_case_page_names_its_community_and_street(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """The facts read "131208-G01 · 131208 · PORTO-CH": codes a worker does not say."""
    case = _report_form(client, auth, cases_engine)
    community, _, street = _miragaia_and_its_street(cases_engine)
    page = client.get(f"/app/incidents/{case}", headers=auth["worker"] | HTML).text
    assert f'<span class="code">131208-G01</span> · {community} · {street}</dd>' in page


def test_a_move_someone_else_made_first_is_said_in_words_not_codes(
    client: TestClient, auth: Auth, cases_engine: Engine
) -> None:
    """Two staff on one case: the second "accept" answered "action: a accepted case cannot
    be 'accept'ed" in English. It says in the page's language that the case has moved on."""
    cid = _report_form(client, auth, cases_engine)
    for who in ("worker", "community"):  # both had the page with "accept" open
        r = client.post(
            f"/app/incidents/{cid}/act",
            data={"action": "accept"},
            headers=auth[who] | HTML | {"Accept-Language": "zh-CN"},
            follow_redirects=False,
        )
    assert r.status_code == 409
    said = re.search(r'<p class="problem" role="alert">([^<]*)</p>', r.text)
    assert said is not None, r.text[-600:]
    assert said.group(1).startswith("该事件现在是“已受理”，“受理”已不适用"), said.group(1)
    r = client.post(f"/cases/{cid}/accept", headers=auth["worker"])  # the API: as before
    assert r.status_code == 409 and "cannot be 'accept'ed" in r.json()["detail"]
    # Sent up a level from a page drawn before it was resolved: the same, for escalation.
    for action, note in (("start", ""), ("resolve", "lamp replaced")):
        r = client.post(
            f"/app/incidents/{cid}/act",
            data={"action": action, "note": note},
            headers=auth["worker"] | HTML,
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[-300:]
    r = client.post(
        f"/app/incidents/{cid}/act",
        data={"action": "escalate", "note": "needs the street"},
        headers=auth["worker"] | HTML | {"Accept-Language": "zh-CN"},
        follow_redirects=False,
    )
    said = re.search(r'<p class="problem" role="alert">([^<]*)</p>', r.text)
    assert r.status_code == 409 and said is not None, r.text[-600:]
    assert said.group(1).startswith("该事件现在是“已解决”，“上报上一级”已不适用"), said.group(1)
