"""Accounts, keys and sign-in, attacked (issue 13, rows 5, 11 and 12).

* Row 5: a key bound to a user never acts above the user's current role and dies with the
  user; keys are revoked and users disabled or removed with ``gridwork key|user …`` and
  ``/admin/…``, effective at once in every process (the CLI here is another process: its
  writes reach the app only through the change feed).
* Row 11: a cookie-signed-in POST/PUT/PATCH/DELETE from another site (another port, a
  sibling subdomain) is refused; bearer tokens and API keys are not affected.
* Row 12: sign-ins are limited per account too, and ``X-Forwarded-For`` is believed only
  from ``GRIDWORK_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api import cli
from api.app import create_app
from api.security import COOKIE, hash_password
from data.access.queries import add_scope, create_api_key, create_user
from data.db import transaction
from data.models import Role, ScopeLevel
from geo.errors import InvalidInput
from tests.api.conftest import PASSWORD, make_settings


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def new_user(engine: Engine, role: Role, *, scope: str | None = "131208") -> str:
    name = f"t-acct-{secrets.token_hex(4)}"
    with transaction(engine) as session:
        create_user(session, name, hash_password(PASSWORD), role)
        if scope and role != Role.admin:
            add_scope(session, name, ScopeLevel.community, scope)
    return name


def new_key(engine: Engine, role: Role, user: str | None) -> tuple[str, str]:
    name = f"t-key-{secrets.token_hex(4)}"
    with transaction(engine) as session:
        return name, create_api_key(session, name, role, user)


def token(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def gridwork(porto_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``gridwork …`` run as another process would: its own engine, over the same database."""
    runner = CliRunner(env={"DATABASE_URL": porto_url, "COLUMNS": "250"})  # unwrapped tables
    # Rich reads COLUMNS once, when the CLI's console is made at import: where that was set
    # then (pytest-xdist's workers have COLUMNS=80), the runner's would never count, and a
    # table wrapped in 80 columns splits the names these tests look for.
    monkeypatch.setattr(cli.out, "_width", 250)

    def run(*args: str) -> Any:
        result = runner.invoke(cli.app, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run


# --- row 5: keys never exceed their user, and die with them -------------------------------


def test_a_key_loses_its_rights_when_its_user_is_demoted(
    anonymous: TestClient, porto_engine: Engine, gridwork: Callable[..., Any]
) -> None:
    user = new_user(porto_engine, Role.admin)
    _, key = new_key(porto_engine, Role.admin, user)
    headers = {"X-API-Key": key}
    assert anonymous.get("/audit", headers=headers).status_code == 200  # and now cached
    gridwork("user", "role", user, "coordinator")
    assert eventually(lambda: anonymous.get("/audit", headers=headers).status_code == 401)
    assert anonymous.get("/me", headers=headers).status_code == 401


def test_a_disabled_users_tokens_and_keys_stop_and_come_back_when_enabled(
    anonymous: TestClient, porto_engine: Engine, gridwork: Callable[..., Any]
) -> None:
    user = new_user(porto_engine, Role.planner)
    _, key = new_key(porto_engine, Role.device, user)
    bearer = token(anonymous, user)
    assert anonymous.get("/me", headers=bearer).status_code == 200
    assert anonymous.get("/me", headers={"X-API-Key": key}).status_code == 200
    gridwork("user", "disable", user)
    assert eventually(lambda: anonymous.get("/me", headers=bearer).status_code == 401)
    assert anonymous.get("/me", headers={"X-API-Key": key}).status_code == 401
    r = anonymous.post("/token", data={"username": user, "password": PASSWORD})
    assert r.status_code == 401
    gridwork("user", "enable", user)
    assert eventually(lambda: anonymous.get("/me", headers=bearer).status_code == 200)


def test_a_removed_user_takes_their_keys_along(
    anonymous: TestClient, porto_engine: Engine, gridwork: Callable[..., Any]
) -> None:
    user = new_user(porto_engine, Role.coordinator)
    name, key = new_key(porto_engine, Role.coordinator, user)
    assert anonymous.get("/me", headers={"X-API-Key": key}).status_code == 200
    result = gridwork("user", "remove", user, "--yes")
    assert "1 API key" in result.output
    assert eventually(lambda: anonymous.get("/me", headers={"X-API-Key": key}).status_code == 401)
    assert name not in gridwork("key", "list").output


def test_gridwork_key_revoke_ends_a_key_at_once(
    anonymous: TestClient, porto_engine: Engine, gridwork: Callable[..., Any]
) -> None:
    name, key = new_key(porto_engine, Role.device, None)
    assert anonymous.get("/me", headers={"X-API-Key": key}).status_code == 200
    assert "revoked" in gridwork("key", "revoke", name).output
    assert eventually(lambda: anonymous.get("/me", headers={"X-API-Key": key}).status_code == 401)
    listed = [line for line in gridwork("key", "list").output.splitlines() if name in line]
    assert listed and listed[0].rstrip().rstrip("│ ").endswith("no")  # not live
    assert key not in gridwork("key", "list").output  # never the key itself


def test_a_key_cannot_be_made_above_its_users_role(porto_engine: Engine) -> None:
    user = new_user(porto_engine, Role.grid_worker)
    with pytest.raises(InvalidInput, match="cannot have role 'admin'"):
        new_key(porto_engine, Role.admin, user)


def test_admins_revoke_keys_and_disable_and_remove_users_over_http(
    anonymous: TestClient, porto_engine: Engine, tokens: dict[str, dict[str, str]]
) -> None:
    admin = tokens["admin"]
    name, key = new_key(porto_engine, Role.device, None)
    assert anonymous.get("/me", headers={"X-API-Key": key}).status_code == 200
    keys = {k["name"]: k for k in anonymous.get("/admin/keys", headers=admin).json()["keys"]}
    assert keys[name]["live"] and "digest" not in keys[name]
    assert anonymous.delete(f"/admin/keys/{name}", headers=admin).status_code == 200
    assert anonymous.get("/me", headers={"X-API-Key": key}).status_code == 401  # same process

    user = new_user(porto_engine, Role.care_staff)
    bearer = token(anonymous, user)
    r = anonymous.post(f"/admin/users/{user}/disable", headers=admin)
    assert r.status_code == 200, r.text
    assert anonymous.get("/me", headers=bearer).status_code == 401
    assert anonymous.post(f"/admin/users/{user}/enable", headers=admin).status_code == 200
    assert anonymous.get("/me", headers=bearer).status_code == 200
    assert anonymous.delete(f"/admin/users/{user}", headers=admin).status_code == 200
    assert anonymous.get("/me", headers=bearer).status_code == 401
    r = anonymous.delete(f"/admin/users/{user}", headers=admin)
    assert r.status_code == 404 and r.json()["field"] == "username"

    audited = anonymous.get("/audit", headers=admin, params={"limit": 20}).json()["entries"]
    assert {(e["method"], e["subject_ids"][0]) for e in audited} >= {
        ("DELETE", name),
        ("POST", user),
        ("DELETE", user),
    }


def test_only_admins_manage_accounts_and_never_their_own(
    anonymous: TestClient, porto_engine: Engine, tokens: dict[str, dict[str, str]]
) -> None:
    victim = new_user(porto_engine, Role.planner)
    for who in ("planner", "coordinator", "grid_worker", "care_staff", "device"):
        for method, path in (
            ("GET", "/admin/keys"),
            ("POST", f"/admin/users/{victim}/disable"),
            ("DELETE", f"/admin/users/{victim}"),
            ("DELETE", "/admin/keys/t-watch-1"),
        ):
            r = anonymous.request(method, path, headers=tokens[who])
            assert r.status_code == 403, (who, path, r.text)
    assert anonymous.get("/me", headers=token(anonymous, victim)).status_code == 200
    admin = new_user(porto_engine, Role.admin)
    r = anonymous.post(f"/admin/users/{admin}/disable", headers=token(anonymous, admin))
    assert r.status_code == 409 and "your own account" in r.json()["detail"]


# --- row 11: cross-site requests with the session cookie ---------------------------------


@pytest.fixture
def browser(porto_app: FastAPI, porto_engine: Engine) -> Iterator[TestClient]:
    """An admin signed in through the login form: the session cookie, nothing else."""
    admin = new_user(porto_engine, Role.admin)
    with TestClient(porto_app) as client:
        r = client.post(
            "/login", data={"username": admin, "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 303 and COOKIE in client.cookies
        yield client


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, "Sec-Fetch-Site"),
        ({"Sec-Fetch-Site": "same-site", "Origin": "http://testserver:8081"}, "Sec-Fetch-Site"),
        ({"Origin": "http://other.testserver"}, "Origin"),  # an older browser
        ({"Origin": "null"}, "Origin"),  # a sandboxed frame
    ],
)
def test_a_cross_site_form_cannot_act_with_the_session_cookie(
    browser: TestClient, porto_engine: Engine, headers: dict[str, str], field: str
) -> None:
    name, key = new_key(porto_engine, Role.device, None)
    r = browser.delete(f"/admin/keys/{name}", headers=headers)
    assert r.status_code == 403, r.text
    assert r.json()["field"] == field and "cross-site" in r.json()["detail"]
    assert browser.get("/me", headers={"X-API-Key": key}).status_code == 200  # still live
    r = browser.post("/alerts/1/ack", headers=headers)
    assert r.status_code == 403, r.text


def test_the_sites_own_pages_and_bearer_callers_still_act(
    browser: TestClient, anonymous: TestClient, porto_engine: Engine
) -> None:
    name, _ = new_key(porto_engine, Role.device, None)
    r = browser.delete(
        f"/admin/keys/{name}",
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
    )
    assert r.status_code == 200, r.text
    name, _ = new_key(porto_engine, Role.device, None)
    assert browser.delete(f"/admin/keys/{name}").status_code == 200  # no browser headers
    # A bearer token is never added by a browser on its own: not checked.
    admin = new_user(porto_engine, Role.admin)
    name, _ = new_key(porto_engine, Role.device, None)
    r = anonymous.delete(
        f"/admin/keys/{name}",
        headers={**token(anonymous, admin), "Origin": "https://evil.example"},
    )
    assert r.status_code == 200, r.text


# --- row 12: sign-in limits --------------------------------------------------------------


def test_guessing_one_accounts_password_from_many_addresses_is_limited(
    porto_engine: Engine, porto_url: str
) -> None:
    app = create_app(make_settings(porto_url, login_per_minute=3), engine=porto_engine)
    user = new_user(porto_engine, Role.planner)
    for n in range(3):
        with TestClient(app, client=(f"198.51.100.{n + 1}", 40000)) as client:
            r = client.post("/token", data={"username": user, "password": f"guess-{n}"})
            assert r.status_code == 401
    with TestClient(app, client=("198.51.100.99", 40000)) as client:
        r = client.post("/token", data={"username": user, "password": PASSWORD})
        assert r.status_code == 429, r.text  # even the right password: no oracle
        assert r.json()["field"] == "username"
        r = client.post("/login", data={"username": user, "password": "guess"})
        assert r.status_code == 429
        other = new_user(porto_engine, Role.planner)  # other accounts are unaffected
        assert client.post("/token", data={"username": other, "password": PASSWORD}).is_success


def test_forwarded_for_is_believed_only_from_configured_proxies(
    porto_engine: Engine, porto_url: str
) -> None:
    settings = make_settings(porto_url, login_per_minute=3, trusted_proxies="10.0.0.0/8")
    app = create_app(settings, engine=porto_engine)

    def sign_in(client: TestClient, forwarded: str) -> int:
        name = f"nobody-{secrets.token_hex(4)}"  # a new name each time: the address limit
        data = {"username": name, "password": "x"}
        return client.post("/token", data=data, headers={"X-Forwarded-For": forwarded}).status_code

    with TestClient(app, client=("203.0.113.7", 40000)) as attacker:  # not a proxy
        codes = [sign_in(attacker, f"192.0.2.{n}") for n in range(5)]
        assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
    with TestClient(app, client=("10.1.2.3", 40000)) as proxy:  # our proxy: one client each
        codes = [sign_in(proxy, f"spoofed, 192.0.2.{n}") for n in range(5)]
        assert codes == [401] * 5
        codes = [sign_in(proxy, "192.0.2.200") for _ in range(4)]
        assert codes[-1] == 429


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gridwork_serve_does_not_believe_forwarded_for_from_loopback(
    porto_url: str, porto_staff: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``gridwork serve`` itself (a real uvicorn): a client on the same machine
    rotating ``X-Forwarded-For`` is still one address."""
    monkeypatch.setenv("DATABASE_URL", porto_url)
    monkeypatch.setenv("GRIDWORK_SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("GRIDWORK_LOGIN_PER_MINUTE", "3")
    monkeypatch.delenv("GRIDWORK_TRUSTED_PROXIES", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    port = _free_port()
    started: dict[str, uvicorn.Server] = {}

    def run(app: Any, **kwargs: Any) -> None:  # what `gridwork serve` asks uvicorn for
        kwargs["port"] = port
        server = uvicorn.Server(uvicorn.Config(app, **kwargs))
        started["server"] = server
        server.run()

    monkeypatch.setattr(uvicorn, "run", run)
    thread = threading.Thread(target=cli.serve, kwargs={"port": port}, daemon=True)
    thread.start()
    try:
        assert eventually(lambda: "server" in started and started["server"].started, 30)
        codes = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(5):
                r = client.post(
                    "/token",
                    data={"username": f"nobody-{n}", "password": "x"},
                    headers={"X-Forwarded-For": f"192.0.2.{n}"},
                )
                codes.append(r.status_code)
        assert codes[3:] == [429, 429], codes
    finally:
        if "server" in started:
            started["server"].should_exit = True
        thread.join(timeout=15)


def test_an_operator_sets_a_forgotten_password_at_the_command_line(
    anonymous: TestClient, porto_engine: Engine, porto_url: str
) -> None:
    """``gridwork user password``: the way back for a forgotten password, the last
    administrator's too. The old sign-ins end; its holder chooses their own next."""
    user = new_user(porto_engine, Role.admin)
    bearer = token(anonymous, user)
    runner = CliRunner(env={"DATABASE_URL": porto_url})
    done = runner.invoke(
        cli.app, ["user", "password", user, "--password-stdin"], input="a fresh start, typed\n"
    )
    assert done.exit_code == 0, (done.output, done.exception)
    assert eventually(lambda: anonymous.get("/me", headers=bearer).status_code == 401)
    assert (
        anonymous.post("/token", data={"username": user, "password": PASSWORD}).status_code == 401
    )
    # The browser's sign-in sets a cookie: kept out of the shared client's jar, which
    # the other tests use as a visitor who is not signed in.
    try:
        signed = anonymous.post(
            "/login",
            data={"username": user, "password": "a fresh start, typed"},
            follow_redirects=False,
        )
    finally:
        anonymous.cookies.clear()
    assert signed.status_code == 303 and signed.headers["location"].startswith("/app/password")
    short = runner.invoke(cli.app, ["user", "password", user, "--password-stdin"], input="short\n")
    assert short.exit_code != 0


def test_the_command_line_refuses_an_account_under_the_systems_own_name(
    porto_url: str, porto_engine: Engine
) -> None:
    """``gridwork user add`` made accounts without the pages' username rule: one named
    ``gridwork`` would close alerts that then read "closed by itself"."""
    runner = CliRunner(env={"DATABASE_URL": porto_url})
    refused = runner.invoke(
        cli.app, ["user", "add", "gridwork", "--role", "admin", "--password-stdin"], input="x" * 16
    )
    assert isinstance(refused.exception, InvalidInput), refused.output
    assert "the system's own" in str(refused.exception)
    with porto_engine.connect() as conn:
        made = conn.execute(text("SELECT count(*) FROM app_user WHERE username = 'gridwork'"))
        assert made.scalar() == 0
