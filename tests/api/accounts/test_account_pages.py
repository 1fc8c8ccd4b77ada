"""Accounts in the browser, as the administrator of a street office and the new grid worker
use them: an account made from a page, its password handed over once and replaced by the
holder's own, an area and a worker record given, a disabled or reset account signed out at
once, and the audit log read for one elder."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.pages.forms import SUGGESTIONS
from api.security import COOKIE
from data.access.accounts import worker_choices
from data.access.queries import create_api_key, write_audit
from data.db import transaction
from data.district.workers import link_worker_account
from data.models import Role
from tests.api.accounts.conftest import ADMIN, COORDINATOR
from tests.factory import PASSWORD, Account, add_accounts

Response = Any  # what the test client answers (starlette's own httpx)

EN = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en"}
ZH = {**EN, "Accept-Language": "zh-CN,zh;q=0.9"}


class Browser:
    """One person's browser: their own session cookie over the shared test client."""

    def __init__(self, client: TestClient, lang: dict[str, str] = EN) -> None:
        self.client = client
        self.lang = lang
        self.cookie: str | None = None

    def _keep(self, r: Response) -> Response:
        value = r.cookies.get(COOKIE)
        if value:
            self.cookie = value
        self.client.cookies.clear()  # the jar is shared: each browser keeps its own
        return r

    def _headers(self) -> dict[str, str]:
        return {**self.lang, **({"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {})}

    def sign_in(self, username: str, password: str = PASSWORD) -> Response:
        data = {"username": username, "password": password, "next": "/"}
        r = self.client.post("/login", data=data, headers=self.lang, follow_redirects=False)
        return self._keep(r)

    def get(self, path: str) -> Response:
        return self._keep(self.client.get(path, headers=self._headers(), follow_redirects=False))

    def post(self, path: str, data: dict[str, Any]) -> Response:
        r = self.client.post(path, data=data, headers=self._headers(), follow_redirects=False)
        return self._keep(r)


@pytest.fixture(scope="module")
def client(accounts_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(accounts_app) as c:
        yield c


@pytest.fixture
def admin(client: TestClient) -> Browser:
    b = Browser(client)
    assert b.sign_in(ADMIN.username).status_code == 303
    return b


def given_password(page: Response) -> str:
    found = re.search(r'<code id="gw-given">([^<]+)</code>', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def field_error(page: Response, field: str) -> str:
    """The reason said beside ``field`` (api/pages/templates/_fields.html)."""
    found = re.search(rf'id="{field}-error" role="alert">([^<]+)</p>', page.text)
    said = re.findall(r'class="(?:field-error|problem)"[^>]*>([^<]+)', page.text)
    assert found, (field, page.status_code, said)
    return html.unescape(found.group(1))


def signed_out(browser: Browser) -> bool:
    """Whether a page that needs signing in sends this browser to sign in."""
    r = browser.get("/app/password")
    return r.status_code in (303, 307) and r.headers["location"].startswith("/login")


def test_a_new_worker_gets_an_account_and_chooses_their_own_password(
    client: TestClient, admin: Browser
) -> None:
    listed = admin.get("/app/accounts")
    assert listed.status_code == 200
    row = re.search(r"a-coordinator</a></td>(.*?)</tr>", listed.text, re.S)
    assert row and "131208 Miragaia" in row.group(1)  # the area, with its name

    made = admin.post(
        "/app/accounts",
        {
            "username": "li.wei",
            "role": "grid_worker",
            "area": "131208-G02",
            "worker": "W-131208-G02",
        },
    )
    assert made.status_code == 200, made.text
    assert "no-store" in made.headers["cache-control"]  # the password is shown once only
    handed = given_password(made)
    assert len(handed) == 19
    # The administrator's home counts who still holds a password made for them.
    assert "1 of them has not chosen their own password yet." in admin.get("/").text

    worker = Browser(client)
    first = worker.sign_in("li.wei", handed)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/app/password?")  # choose your own first
    home = worker.get("/")
    assert "a password an administrator gave you" in home.text
    # They read the households of the worker record they were linked to, and no other.
    assert worker.get("/grids/131208-G02/households").status_code == 200
    assert worker.get("/grids/131208-G01/households").status_code == 404

    old_cookie = worker.cookie
    wrong = worker.post(
        "/app/password",
        {"current_password": "not it", "new_password": "x" * 14, "repeat_password": "x" * 14},
    )
    assert wrong.status_code == 422
    assert field_error(wrong, "current_password") == "This is not your current password."
    short = worker.post(
        "/app/password",
        {"current_password": handed, "new_password": "short", "repeat_password": "short"},
    )
    assert field_error(short, "new_password") == "at least 12 characters"
    differ = worker.post(
        "/app/password",
        {
            "current_password": handed,
            "new_password": "paper lantern river",
            "repeat_password": "paper lantern rive",
        },
    )
    assert field_error(differ, "repeat_password") == "the two passwords differ"

    done = worker.post(
        "/app/password",
        {
            "current_password": handed,
            "new_password": "paper lantern river",
            "repeat_password": "paper lantern river",
            "next": "/",
        },
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/app/password?changed=1&next=%2F"
    said = worker.get(done.headers["location"])
    assert (
        "Your password is changed." in said.text and 'class="button primary" href="/"' in said.text
    )
    assert 'id="gw-password"' not in said.text
    assert worker.cookie != old_cookie  # signed in again, here
    home = worker.get("/")
    assert home.status_code == 200 and "a password an administrator gave you" not in home.text

    # Every other sign-in ended with the old password: the cookie from before is refused.
    stale = Browser(client)
    stale.cookie = old_cookie
    assert signed_out(stale)
    assert Browser(client).sign_in("li.wei", handed).status_code == 401
    assert Browser(client).sign_in("li.wei", "paper lantern river").headers["location"] == "/"

    assert "not chosen their own password" not in admin.get("/").text
    listed = admin.get("/app/accounts")
    row = re.search(r"li\.wei</a></td>(.*?)</tr>", listed.text, re.S)
    assert row and "W-131208-G02" in row.group(1) and "Active" in row.group(1)


def test_a_refused_new_account_is_said_beside_its_field_in_the_pages_language(
    client: TestClient, admin: Browser
) -> None:
    taken = admin.post(
        "/app/accounts", {"username": COORDINATOR.username, "role": "coordinator", "area": "131208"}
    )
    assert taken.status_code == 409
    assert COORDINATOR.username in field_error(taken, "username")
    assert 'value="a-coordinator"' in taken.text  # what was typed is kept

    nowhere = admin.post("/app/accounts", {"username": "zhao", "role": "coordinator", "area": "X9"})
    assert nowhere.status_code == 422
    assert "no street, community or grid with code 'X9'" in field_error(nowhere, "area")
    none = admin.post("/app/accounts", {"username": "zhao", "role": "planner", "area": ""})
    assert "Give an area" in field_error(none, "area")
    odd = admin.post("/app/accounts", {"username": "赵 六", "role": "planner", "area": "PORTO-CH"})
    assert "letters, digits" in field_error(odd, "username")
    # The system's own name in the records (alerts closed by themselves, plans switched on
    # their day): an account under it would pass for the system.
    system = admin.post(
        "/app/accounts", {"username": "GridWork", "role": "planner", "area": "131208"}
    )
    assert "the system's own" in field_error(system, "username")

    # A department without an area serves the whole district: it needs none.
    dept = admin.post("/app/accounts", {"username": "water-dept", "role": "department"})
    assert dept.status_code == 200 and given_password(dept)

    zh = Browser(client, ZH)
    zh.sign_in(ADMIN.username)
    said = zh.post("/app/accounts", {"username": "zhao", "role": "", "area": "PORTO-CH"})
    assert field_error(said, "role") == "请选择此人的职责。"
    system = zh.post("/app/accounts", {"username": "gridwork", "role": "planner", "area": "131208"})
    assert field_error(system, "username") == "此名称在记录中代表系统本身，请另选一个"
    # Nothing was made by any refusal.
    assert "zhao" not in admin.get("/app/accounts").text
    assert 'href="/app/accounts/gridwork"' not in admin.get("/app/accounts").text.lower()


def test_an_administrator_moves_disables_resets_and_removes_an_account(
    client: TestClient, admin: Browser, accounts_engine: Engine
) -> None:
    made = admin.post(
        "/app/accounts", {"username": "wang", "role": "coordinator", "area": "131208"}
    )
    handed = given_password(made)
    wang = Browser(client)
    wang.sign_in("wang", handed)
    wang.post(
        "/app/password",
        {
            "current_password": handed,
            "new_password": "blue kettle morning",
            "repeat_password": "blue kettle morning",
        },
    )
    me = wang.get("/me").json()
    assert me["role"] == "coordinator" and me["scope"] == [{"level": "community", "code": "131208"}]

    page = admin.get("/app/accounts/wang")
    assert "API keys acting for it" not in page.text  # it has none
    with transaction(accounts_engine) as session:
        create_api_key(session, "t-wang-sync", Role.coordinator, "wang")
    page = admin.get("/app/accounts/wang")
    assert "API keys acting for it</dt><dd>1</dd>" in page.text
    assert admin.post("/app/accounts/wang/role", {"role": "planner"}).status_code == 303
    assert admin.post("/app/accounts/wang/areas", {"area": "PORTO-CH"}).status_code == 303
    removed = admin.post(
        "/app/accounts/wang/areas/remove", {"level": "community", "code": "131208"}
    )
    assert removed.headers["location"] == "/app/accounts/wang?done=saved"
    me = wang.get("/me").json()  # at once: the change feed ends the remembered principal
    assert me["role"] == "planner" and me["scope"] == [{"level": "street", "code": "PORTO-CH"}]
    unknown = admin.post("/app/accounts/wang/worker", {"worker": "W-NOPE"})
    assert unknown.status_code == 422 and "no worker with code" in field_error(unknown, "worker")

    # A worker record already linked to a colleague is not taken from them by a code picked
    # from the list: the refusal names who holds it; unlinked there, it can be given.
    assert admin.post("/app/accounts/wang/worker", {"worker": "W-131208-G03"}).status_code == 303
    other = {"username": "zhou", "role": "grid_worker", "area": "131208-G03"}
    held = admin.post("/app/accounts", {**other, "worker": "W-131208-G03"})
    assert held.status_code == 409
    assert field_error(held, "worker") == (
        "worker W-131208-G03 is linked to the account 'wang': unlink it there first"
    )
    assert admin.post("/app/accounts/wang/worker", {"worker": ""}).status_code == 303
    assert admin.post("/app/accounts", {**other, "worker": "W-131208-G03"}).status_code == 200

    assert admin.post("/app/accounts/wang/active", {"active": "false"}).status_code == 303
    assert signed_out(wang)
    assert Browser(client).sign_in("wang", "blue kettle morning").status_code == 401
    assert admin.post("/app/accounts/wang/active", {"active": "true"}).status_code == 303
    assert not signed_out(wang)  # the same sign-in works again

    reset = admin.post("/app/accounts/wang/password", {})
    again = given_password(reset)
    assert signed_out(wang)  # signed out everywhere
    assert Browser(client).sign_in("wang", "blue kettle morning").status_code == 401
    assert Browser(client).sign_in("wang", again).headers["location"].startswith("/app/password")

    wrong = admin.post("/app/accounts/wang/remove", {"confirm": "wan"})
    assert (
        wrong.status_code == 422
        and field_error(wrong, "confirm") == "Type the account's name to confirm."
    )
    gone = admin.post("/app/accounts/wang/remove", {"confirm": "wang"})
    assert gone.headers["location"] == "/app/accounts?removed=wang"
    assert admin.get("/app/accounts/wang").status_code == 404

    with accounts_engine.connect() as conn:
        said = (
            conn.execute(
                text(
                    "SELECT reason FROM audit_log WHERE subject_type = 'user' "
                    "AND subject_ids = ARRAY['wang']::varchar[] ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
    assert said == [
        "created as coordinator; area community 131208",
        "changed own password",
        "role set to planner",
        "area street PORTO-CH added",
        "area community 131208 removed",
        "worker record W-131208-G03 linked",
        "worker record unlinked",
        "disabled",
        "enabled",
        "password reset",
        "removed with 1 API key(s)",
    ]


def test_the_last_administrator_stays_one(client: TestClient, admin: Browser) -> None:
    own = admin.get(f"/app/accounts/{ADMIN.username}")
    assert "Reset the password" not in own.text and "Remove the account" not in own.text
    demoted = admin.post(f"/app/accounts/{ADMIN.username}/role", {"role": "planner"})
    assert demoted.status_code == 409
    assert "the last active admin" in demoted.text
    assert admin.get("/me").json()["role"] == "admin"
    refused = admin.post(f"/app/accounts/{ADMIN.username}/active", {"active": "false"})
    assert refused.status_code == 409 and "your own account" in field_error(refused, "username")


def test_only_an_administrator_opens_accounts_and_the_audit_log(client: TestClient) -> None:
    coordinator = Browser(client)
    coordinator.sign_in(COORDINATOR.username)
    assert coordinator.get("/app/accounts").status_code == 403
    assert coordinator.get("/app/audit").status_code == 403
    assert coordinator.post("/app/accounts", {"username": "x1", "role": "admin"}).status_code == 403
    page = coordinator.get("/app/password")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.text
    assert 'href="/app/password"' in coordinator.get("/").text  # in the header of every page
    assert 'href="/app/accounts"' not in coordinator.get("/").text


def test_the_audit_log_says_who_read_one_elder_at_local_time(
    client: TestClient, admin: Browser, accounts_engine: Engine
) -> None:
    with transaction(accounts_engine) as session:
        for i in range(55):
            write_audit(
                session,
                actor="care-a" if i % 2 else "care-b",
                role="care_staff",
                method="GET",
                route="/app/elders/4242/locate",
                subject_type="elder",
                subject_ids=[4242 if i < 53 else 4243],
                reason=f"lost at the market {i}",
            )
    first = admin.get("/app/audit?kind=elder&subject=4242")
    assert first.status_code == 200
    rows = re.findall(r"lost at the market (\d+)", first.text)
    assert rows == [str(i) for i in range(52, 2, -1)]  # the newest 50, newest first
    assert 'href="/app/elders/4242"' in first.text
    older = re.search(r'href="/app/audit\?([^"]+)" rel="next"', first.text)
    assert older
    rest = admin.get("/app/audit?" + older.group(1).replace("&amp;", "&"))
    assert re.findall(r"lost at the market (\d+)", rest.text) == ["2", "1", "0"]
    assert 'rel="next"' not in rest.text

    by_a = admin.get("/app/audit?actor=care-a&kind=elder&subject=4242")
    assert set(re.findall(r"<td[^>]*>(care-\w)", by_a.text)) == {"care-a"}
    with accounts_engine.connect() as conn:
        at = conn.execute(text("SELECT max(at) FROM audit_log WHERE actor = 'care-b'")).scalar_one()
    local = at.astimezone(ZoneInfo("Asia/Shanghai"))
    # Said at Asia/Shanghai's time (8 hours past UTC), as English says a time of day.
    assert f"{local.hour % 12 or 12}:{local:%M:%S}" in admin.get("/app/audit?actor=care-b").text

    with transaction(accounts_engine) as session:
        write_audit(
            session,
            actor="gridwork",
            role="system",
            method="SWITCH",
            route="/plans/7/publish",
            subject_type="plan",
            subject_ids=[7],
            reason="grids switched",
        )
        write_audit(
            session,
            actor="worker-a",
            role="grid_worker",
            method="GET",
            route="/app/households",
            subject_type="household",
            subject_ids=["HH-1"],
            reason="household register (page)",
        )
    # A household is named as one (住户), not as the counts' word (户数).
    zh = Browser(client, ZH)
    zh.sign_in(ADMIN.username)
    assert '>住户 <span class="code">HH-1</span></td>' in zh.get("/app/audit?kind=household").text
    switched = admin.get("/app/audit?actor=gridwork")
    assert 'gridwork <span class="muted">automatic</span>' in switched.text
    assert 'href="/app/plans/7"' in switched.text

    bad = admin.get("/app/audit?since=2026-13-01")
    assert bad.status_code == 422 and field_error(bad, "since") == "A date as yyyy-mm-dd."
    future = admin.get("/app/audit?since=2999-01-01")
    assert "Nothing in the audit log matches." in future.text


def test_the_audit_log_says_its_reasons_in_the_readers_language(
    client: TestClient, admin: Browser, accounts_engine: Engine
) -> None:
    """An administrator of a street office reads the log in Chinese: what gridwork wrote (an
    account made, its role changed) is said in Chinese, role and level in words; what someone
    typed stays as typed; the English stays the record the API answers."""
    admin.post("/app/accounts", {"username": "li", "role": "coordinator", "area": "131208"})
    assert admin.post("/app/accounts/li/role", {"role": "planner"}).status_code == 303
    with transaction(accounts_engine) as session:
        write_audit(
            session,
            actor="care-c",
            role="care_staff",
            method="GET",
            route="/elders/77/locate",
            subject_type="position",
            subject_ids=[77],
            reason="走失，家属报告",
        )
    zh = Browser(client, ZH)
    zh.sign_in(ADMIN.username)
    page = html.unescape(zh.get("/app/audit?kind=user&subject=li").text)
    assert "新建账号，角色：协调员；辖区：社区 131208" in page
    assert "角色改为 规划员" in page
    assert "created as" not in page and "role set to" not in page
    typed = html.unescape(zh.get("/app/audit?kind=position&subject=77").text)
    assert "走失，家属报告" in typed
    english = html.unescape(admin.get("/app/audit?kind=user&subject=li").text)
    assert "created as Coordinator; area Community 131208" in english

    entries = admin.get("/audit?actor=a-admin&limit=10").json()["entries"]
    made = next(e for e in entries if (e["reason"] or "").startswith("created as"))
    assert made["reason"] == "created as coordinator; area community 131208"
    assert made["reason_said"] == [
        ["account_created", {"role": "coordinator"}],
        ["with_area", {"level": "community", "code": "131208"}],
    ]


def test_worker_suggestions_are_bounded_and_put_the_unlinked_first(
    accounts_engine: Engine, client: TestClient, admin: Browser
) -> None:
    """The account pages listed every worker record in a datalist: 60,000 at megacity size.
    They suggest at most SUGGESTIONS, the records without an account first (those an
    administrator links); any code may still be typed."""
    add_accounts(accounts_engine, [Account("a-linked", Role.grid_worker)])
    with transaction(accounts_engine) as session:
        link_worker_account(session, "W-131208-G01", "a-linked")
        every = worker_choices(session, limit=SUGGESTIONS)
        two = worker_choices(session, limit=2)
    assert len(every) > 2 and len(two) == 2
    linked = [code for code, _, user in every if user]
    assert "W-131208-G01" in linked
    assert [user for _, _, user in every] == sorted(
        (user for _, _, user in every), key=lambda u: u is not None
    )  # the unlinked first
    assert all(user is None for _, _, user in two)
    page = admin.get("/app/accounts")
    offered = re.findall(r'<datalist id="gw-workers">(.*?)</datalist>', page.text, re.S)
    assert offered and offered[0].count("<option") == len(every) <= SUGGESTIONS


def test_the_list_names_a_linked_worker_record_as_colleagues_know_it(
    accounts_engine: Engine, admin: Browser
) -> None:
    """The accounts list said "DW-131208-G01" where the account's own page and every map
    say 王敏: the record's name follows its code."""
    add_accounts(accounts_engine, [Account("a-named", Role.grid_worker)])
    with transaction(accounts_engine) as session:
        link_worker_account(session, "W-131208-G02", "a-named")
        name = session.execute(
            text("SELECT display_name FROM worker WHERE code = 'W-131208-G02'")
        ).scalar_one()
    page = admin.get("/app/accounts")
    assert name and re.search(rf">W-131208-G02 {re.escape(name)}</td>", page.text), name
