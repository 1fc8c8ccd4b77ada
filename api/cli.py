"""The ``gridwork`` command: database life cycle, imports, checks, the demo and the server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from data.cluster import LocalCluster
from data.models import Role, ScopeLevel
from data.settings import Settings
from geo.errors import GridworkError, ImportRejected, InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from data.access.reasons import AuditReason
    from data.importing.loading import DemoElder
    from data.importing.readers import Kind

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
db_app = typer.Typer(no_args_is_help=True, help="The PostGIS database gridwork uses.")
app.add_typer(db_app, name="db")
derive_app = typer.Typer(no_args_is_help=True, help="Derive data from what is stored.")
app.add_typer(derive_app, name="derive")
user_app = typer.Typer(no_args_is_help=True, help="Staff accounts, their roles and areas.")
app.add_typer(user_app, name="user")
key_app = typer.Typer(no_args_is_help=True, help="API keys for devices and integrations.")
app.add_typer(key_app, name="key")

out = Console()
err = Console(stderr=True)

#: The commands that destroy something ask first, unless told not to.
Yes = Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")]


def _settings() -> Settings:
    return Settings()


def _engine(settings: Settings) -> Engine:
    from data.db import database_url, make_engine, migrate

    url = database_url(settings)
    migrate(url)
    return make_engine(url)


@db_app.command("up")
def db_up() -> None:
    """Start the database (the private cluster unless DATABASE_URL is set) and migrate it."""
    from data.db import database_url, migrate

    settings = _settings()
    url = database_url(settings)
    migrate(url)
    shown = url.split("@")[-1]
    out.print(f"[green]PostGIS ready[/] at {shown}")


@db_app.command("down")
def db_down() -> None:
    """Stop the private cluster (an external DATABASE_URL is never stopped by gridwork)."""
    settings = _settings()
    if settings.database_url:
        out.print("DATABASE_URL is set: gridwork does not manage that server.")
        return
    LocalCluster(settings.state_path, settings.database_name).stop()
    out.print("private PostGIS stopped")


@db_app.command("status")
def db_status() -> None:
    """Say which database is in use and whether it runs."""
    settings = _settings()
    if settings.database_url:
        out.print(f"external database: {settings.database_url.split('@')[-1]}")
        return
    st = LocalCluster(settings.state_path, settings.database_name).status()
    table = Table(show_header=False)
    for key, value in (
        ("data directory", str(st.data_dir)),
        ("initialised", str(st.initialised)),
        ("running", str(st.running)),
        ("port", str(st.port)),
        ("url", st.url or "-"),
    ):
        table.add_row(key, value)
    out.print(table)
    if not st.running:
        raise typer.Exit(3)


@app.command("import")
def import_layer(
    kind: Annotated[
        str,
        typer.Argument(
            help="streets, communities, grids, workers, roads, "
            "buildings, facilities, households or incidents"
        ),
    ],
    file: Annotated[Path, typer.Argument(exists=False)],
    layer: Annotated[str | None, typer.Option(help="layer inside the file")] = None,
    id_field: Annotated[
        str | None, typer.Option(help="column holding each row's stable id")
    ] = None,
    crs: Annotated[str | None, typer.Option(help="EPSG code for a file without a CRS")] = None,
    allow_rejects: Annotated[
        bool, typer.Option(help="store the good rows, print the rejects")
    ] = False,
) -> None:
    """Import a file (GeoPackage, GeoJSON, Shapefile, FlatGeobuf, CSV lon/lat, OSM PBF)."""
    from sqlalchemy.exc import DBAPIError

    from api.pages.frame import N_, gettext
    from data.importing.loading import import_file

    settings = _settings()
    engine = _engine(settings)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"importing {file.name}", total=None)
        try:
            report = import_file(
                engine,
                cast("Kind", kind),  # read_layer refuses an unknown kind by name
                file,
                layer=layer,
                id_field=id_field,
                crs=crs,
                allow_rejects=allow_rejects,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                settings=settings,
            )
        except DBAPIError as exc:  # one line, not a traceback; nothing was written
            first = str(exc.orig or exc).strip().splitlines()[0]
            raise InvalidInput(
                f"{file.name}: the database refused it, nothing written ({first})", field="file"
            ) from None
    for r in report.rejects:
        err.print(f"[yellow]rejected[/] {file}: {r}")
    out.print(
        gettext(
            settings.locale,
            N_(
                "%(kind)s: %(inserted)s inserted, %(updated)s updated, %(unchanged)s unchanged, "
                "%(rejected)s rejected"
            ),
            kind=kind,
            inserted=report.inserted,
            updated=report.updated,
            unchanged=report.unchanged,
            rejected=len(report.rejects),
        )
    )


@derive_app.command("households")
def derive_households(
    seed: Annotated[int, typer.Option(help="seed for placing household points")] = 1,
) -> None:
    """Estimate households per residential building and place them as points (flagged)."""
    from data.importing.loading import derive_households as run

    settings = _settings()
    summary = run(_engine(settings), seed=seed, settings=settings)
    table = Table("community", "buildings", "households", "scaled to census")
    for row in summary:
        table.add_row(
            row.community, str(row.buildings), str(row.households), "yes" if row.scaled else "no"
        )
    out.print(table)


@app.command("policy")
def policy_table() -> None:
    """Print who may do what (data/policy.py) as the README's Markdown table."""
    from data.policy import role_table

    print(role_table())


@app.command("check")
def check(
    geojson: Annotated[Path | None, typer.Option(help="also write the issues as GeoJSON")] = None,
) -> None:
    """Report overlaps, gaps, children outside their parent and slivers, level by level; stored
    assignments PostGIS disagrees with; and keys no page or API path can open."""
    from data.district.checks import run_checks

    settings = _settings()
    report = run_checks(_engine(settings), settings=settings)
    table = Table("level", "kind", "codes", "area m²", "location (lon, lat)")
    for issue in report.issues:
        table.add_row(
            issue["level"],
            issue["kind"],
            ", ".join(issue["codes"]),
            f"{issue['area_m2']:.1f}",
            f"{issue['lon']:.6f}, {issue['lat']:.6f}",
        )
    out.print(table if report.issues else "[green]no topology issues[/]")
    if report.ungridded:
        out.print(f"communities without grids yet: {', '.join(report.ungridded)}")
    for m in report.assignment:
        out.print(f"[red]assignment[/] {m['table']} {m['key']}: {m['reason']}")
    out.print(
        f"stored assignment vs PostGIS ST_Covers: {len(report.assignment)} mismatch(es)"
        + ("" if report.assignment else " [green]✓[/]")
    )
    for k in report.unaddressable:
        where = k["grid"] or "no grid"
        out.print(f"[red]key[/] {k['table']} {k['key']!r} in {where}: {k['reason']}")
    out.print(
        f"keys no page or API path can open: {len(report.unaddressable)}"
        + (" (give each a new one: gridwork recode)" if report.unaddressable else " [green]✓[/]")
    )
    for name in report.system_named:
        out.print(
            f"[red]account[/] {name!r} takes the system's own name: its acts read as the system's"
            " (closed by itself); make the person a new account and disable this one"
        )
    households = [
        row["key"]
        for row in [*report.assignment, *report.unaddressable]
        if row["table"] == "household"
    ]
    if households:  # household codes went to the terminal: a read, audited like GET /checks'
        from data.db import transaction

        with transaction(_engine(settings)) as session:
            _audit_cli(session, "check", "household", households)
    if geojson:
        geojson.write_text(json.dumps(report.geojson, ensure_ascii=False))
        out.print(f"wrote {geojson}")
    if report.issues or report.assignment or report.unaddressable or report.system_named:
        raise typer.Exit(1)


@app.command("recode")
def recode(
    table: Annotated[str, typer.Argument(help="household, facility or incident")],
    old: Annotated[str, typer.Argument(help="the key as stored (as `gridwork check` lists it)")],
    new: Annotated[str, typer.Argument(help="a key the pages can open: no '/', not 'new'")],
) -> None:
    """Give a household, facility or incident a new key: for keys no page or API path can
    open, stored before such keys were refused (`gridwork check` lists them)."""
    from data.access.reasons import said
    from data.assignment.keys import recode as recode_row
    from data.db import transaction

    settings = _settings()
    with transaction(_engine(settings)) as session:
        recode_row(session, table, old, new)
        # The audit log names records by key: this row ties the old key's rows to the new.
        _audit_cli(session, "recode", table, new, reason=said("recoded", old=old, new=new))
    out.print(f"{table} {old!r} is now {new!r}")


@app.command("assign")
def assign() -> None:
    """Recompute the grid of every household, facility and incident, in one transaction."""
    from data.assignment.service import reassign
    from data.db import transaction

    settings = _settings()
    with transaction(_engine(settings)) as session:
        results = reassign(session, settings=settings)
    table = Table("table", "rows", "changed", "snapped", "unassigned")
    for r in results:
        table.add_row(
            r.table, f"{r.rows:,}", f"{r.changed:,}", f"{r.snapped:,}", f"{r.unassigned:,}"
        )
    out.print(table)


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the API and the maps."""
    import uvicorn

    from api.app import create_app
    from api.logs import log_config

    settings = _settings()
    out.print(f"gridwork serving at [bold]http://{host}:{port}/[/]")
    # proxy_headers=False: uvicorn would believe X-Forwarded-For from loopback; gridwork reads
    # it itself, from GRIDWORK_TRUSTED_PROXIES only (api.hardening.client_address).
    # access_log=False: uvicorn's line carries the query string (a watch's key, a position);
    # gridwork writes its own, by route template (api.logs, GRIDWORK_LOG_FORMAT).
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(settings.log_format),
        access_log=False,
        proxy_headers=False,
    )


def _demo_admin(engine: Engine, settings: Settings) -> None:
    """A demo admin with a random password, kept in the state folder: never a default one."""
    import secrets

    from api.security import hash_password
    from data.access.queries import create_user, find_user
    from data.db import transaction

    path = settings.state_path / "demo-admin.txt"
    with transaction(engine) as session:
        if find_user(session, "demo-admin") is None or not path.exists():
            password = secrets.token_urlsafe(12)
            if find_user(session, "demo-admin") is None:
                create_user(session, "demo-admin", hash_password(password), Role.admin)
            else:
                from sqlalchemy import text

                session.execute(
                    text("UPDATE app_user SET password_hash = :h WHERE username = 'demo-admin'"),
                    {"h": hash_password(password)},
                )
            path.touch(mode=0o600)
            path.write_text(f"username: demo-admin\npassword: {password}\n")
    out.print(f"sign in as [bold]demo-admin[/], password in {path}:")
    out.print(path.read_text().strip())


def _demo_accounts(engine: Engine, settings: Settings) -> None:
    """One sign-in per role (random passwords, kept in the state folder, mode 600), each
    scoped to a real area of the demo: the planner to the street (街道) of the first
    community, the coordinator and care staff to that community, and the grid worker to the
    grids of the first fictional worker, linked to that worker record."""
    import secrets

    from sqlalchemy import text

    from api.security import hash_password
    from data.access.queries import add_scope, create_user, find_user
    from data.db import transaction
    from data.district.workers import link_worker_account

    path = settings.state_path / "demo-accounts.txt"
    with engine.connect() as conn:
        community = conn.execute(text("SELECT code FROM community ORDER BY code LIMIT 1")).scalar()
        street = conn.execute(  # the street office over it: where a planner works
            text(
                "SELECT s.code FROM street s JOIN community c ON c.street_id = s.id "
                "WHERE c.code = :c"
            ),
            {"c": community},
        ).scalar()
        worker = conn.execute(
            text(
                "SELECT w.code, array_agg(g.code ORDER BY g.code) FROM worker w JOIN grid g "
                "ON g.worker_id = w.id AND g.valid_to IS NULL GROUP BY w.code ORDER BY w.code "
                "LIMIT 1"
            )
        ).first()
    area = [(ScopeLevel.community, str(community))] if community else []
    people: list[tuple[str, Role, list[tuple[ScopeLevel, str]]]] = [
        ("demo-planner", Role.planner, [(ScopeLevel.street, str(street))] if street else area),
        ("demo-coordinator", Role.coordinator, area),
        ("demo-care", Role.care_staff, area),
    ]
    if worker is not None:
        people.append(("demo-worker", Role.grid_worker, [(ScopeLevel.grid, g) for g in worker[1]]))
    lines = []
    if path.exists():
        lines = path.read_text().splitlines()
    known = {line.split(":", 1)[0] for line in lines}
    with transaction(engine) as session:
        for username, role, scopes in people:
            exists = find_user(session, username) is not None
            password = None
            if not exists or username not in known:  # new, or its password was lost
                password = secrets.token_urlsafe(12)
                if exists:
                    session.execute(
                        text("UPDATE app_user SET password_hash = :h WHERE username = :u"),
                        {"h": hash_password(password), "u": username},
                    )
                else:
                    create_user(session, username, hash_password(password), role)
            # Every run (idempotent): an earlier demo made demo-planner without an area.
            for level, code in scopes:
                add_scope(session, username, level, code)
            if password is None:
                continue
            if role is Role.grid_worker and worker is not None:
                link_worker_account(session, worker[0], username)
            lines.append(f"{username}: {password}  ({role.value})")
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n")
    out.print(f"one sign-in per role (passwords kept in {path}, readable by you only):")
    out.print(path.read_text().strip())


SAMPLES = ("porto", "synthetic-district")
#: The metric CRS each sample is measured in (stored on its first import).
_SAMPLE_EPSG = {"porto": 32629, "synthetic-district": 32645}


def _demo_world(engine: Engine, settings: Settings, *, sample: str) -> list[DemoElder]:
    """Fictional elders with watches (keys kept mode 600) and a dozen cases; idempotent."""
    from datetime import UTC, datetime

    from api.demo import read_keys, write_keys
    from data.importing.loading import enrol_demo_elders, report_demo_incidents

    keys_path = settings.state_path / "demo-devices.txt"
    elders = enrol_demo_elders(
        engine,
        settings=settings,
        keys=read_keys(keys_path),
        gcj02=sample == "synthetic-district",
    )
    write_keys(keys_path, elders)
    out.print(
        f"elders: {len(elders)} fictional elders enrolled by demo-care, with consent, a watch "
        f"and a safe zone (watch keys in {keys_path})"
    )
    for line in report_demo_incidents(engine, now=datetime.now(UTC)):
        out.print(line)
    return elders


@app.command("demo")
def demo(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    port: int = 8000,
    sample: Annotated[
        str, typer.Option(help="porto (the OSM sample) or synthetic-district (Karamay, larger)")
    ] = "porto",
    replay: Annotated[
        bool,
        typer.Option(
            "--replay/--no-replay", help="simulated watches walk and report while it serves"
        ),
    ] = True,
) -> None:
    """Load a sample (idempotent), staff it, add demo people, elders and cases, then serve."""
    from data.crs import metric_epsg
    from data.importing.loading import load_porto, load_sample, plan_ungridded, staff_the_grids

    if sample not in SAMPLES:
        raise InvalidInput(f"'{sample}' is not one of {', '.join(SAMPLES)}", field="sample")
    settings = _settings()
    engine = _engine(settings)
    with engine.connect() as conn:
        epsg = metric_epsg(conn, settings.metric_epsg)
    if epsg is not None and not settings.metric_epsg and epsg != _SAMPLE_EPSG[sample]:
        raise InvalidInput(
            f"this database holds another district (measured in EPSG:{epsg}); load "
            f"'{sample}' into its own one (another GRIDWORK_STATE_DIR or DATABASE_URL)",
            field="sample",
        )
    lines = (
        load_porto(engine, settings=settings)
        if sample == "porto"
        else load_sample(engine, settings=settings)
    )
    for line in lines:
        out.print(line)
    for line in plan_ungridded(engine, settings=settings, author="demo"):
        out.print(line)
    for line in staff_the_grids(engine):
        out.print(line)
    _demo_admin(engine, settings)
    _demo_accounts(engine, settings)
    elders = _demo_world(engine, settings, sample=sample)
    if serve_after:
        if replay:
            from api.demo import prepare, start

            watches = prepare(engine, settings, elders)
            if watches is not None:
                start(watches, port)
                out.print(
                    f"{len(watches.watches)} simulated watches report every 10 s; "
                    f"{elders[0].device_code} wanders out of its safe zone and back"
                )
        serve(port=port)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    from data.access.accounts import MIN_PASSWORD

    if len(password) < MIN_PASSWORD:
        raise InvalidInput.said("password_too_short", field="password", minimum=MIN_PASSWORD)
    return password


def _parse_scopes(scopes: list[str]) -> list[tuple[ScopeLevel, str]]:
    parsed = []
    for item in scopes:
        level, _, code = item.partition(":")
        if level not in ScopeLevel.__members__ or not code:
            raise InvalidInput(
                f"'{item}' is not LEVEL:CODE with LEVEL street, community or grid", field="scope"
            )
        parsed.append((ScopeLevel(level), code))
    return parsed


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[Role, typer.Option(help="what the user does")],
    scope: Annotated[
        list[str] | None, typer.Option(help="area, e.g. community:S01-C04 (repeatable)")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Create a user; the first admin is created this way (there is no default account)."""
    from api.security import hash_password
    from data.access.accounts import check_username
    from data.access.queries import add_scope, create_user
    from data.db import transaction

    check_username(username)
    password = _read_password(password_stdin)
    scopes = _parse_scopes(scope or [])
    with transaction(_engine(_settings())) as session:
        create_user(session, username, hash_password(password), role)
        for level, code in scopes:
            add_scope(session, username, level, code)
    out.print(f"user {username} ({role.value}) created")


@user_app.command("password")
def user_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
    temporary: Annotated[
        bool, typer.Option(help="its holder chooses their own at their next sign-in")
    ] = True,
) -> None:
    """Set a user's password: a forgotten one, the last administrator's too. Every sign-in of
    the account ends; by default the holder chooses their own at their next sign-in."""
    from datetime import UTC, datetime

    from api.security import hash_password
    from data.access.accounts import set_password
    from data.db import transaction

    password = _read_password(password_stdin)
    with transaction(_engine(_settings())) as session:
        set_password(
            session, username, hash_password(password), temporary=temporary, at=datetime.now(UTC)
        )
        _audit_cli(session, "user password", "user", username)
    out.print(f"{username}: password set; every sign-in of the account has ended")


@user_app.command("role")
def user_role(username: str, role: Role) -> None:
    """Change a user's role; it takes effect on their next request."""
    from data.access.queries import set_role
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        set_role(session, username, role)
    out.print(f"{username} is now {role.value}")


@user_app.command("worker")
def user_worker(
    username: str,
    worker: Annotated[str, typer.Argument(help="the worker's code, as imported with the grids")],
) -> None:
    """Say which worker record a grid worker signs in as: they then read and edit the
    households of that worker's grids (and of no other)."""
    from data.db import transaction
    from data.district.workers import link_worker_account

    with transaction(_engine(_settings())) as session:
        link_worker_account(session, worker, username)
    out.print(f"{username} signs in as worker {worker}")


@user_app.command("scope")
def user_scope(username: str, scope: Annotated[list[str], typer.Argument()]) -> None:
    """Give a user one or more areas (LEVEL:CODE)."""
    from data.access.queries import add_scope
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        for level, code in _parse_scopes(scope):
            add_scope(session, username, level, code)
    out.print(f"{username}: area updated")


@app.command("purge")
def purge(
    days: Annotated[
        int | None, typer.Option(min=1, help="retention in days (default: the setting, 30)")
    ] = None,
) -> None:
    """Delete elders' positions older than the retention period (the server does it hourly)."""
    from datetime import UTC, datetime, timedelta

    from data.care import service as care

    settings = _settings()
    keep = days or settings.position_retention_days
    deleted = care.purge(_engine(settings), now=datetime.now(UTC), retention=timedelta(days=keep))
    out.print(f"deleted {deleted} position(s) older than {keep} days")


@key_app.command("add")
def key_add(
    name: str,
    role: Annotated[Role, typer.Option()] = Role.device,
    user: Annotated[str | None, typer.Option(help="act with this user's area")] = None,
) -> None:
    """Create an API key; it is printed once and only its digest is stored."""
    from data.access.queries import create_api_key
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        key = create_api_key(session, name, role, user)
    out.print(key)


def _audit_cli(
    session: Session,
    command: str,
    kind: str,
    name: str | list[str],
    *,
    reason: AuditReason | None = None,
) -> None:
    """An audit row for a change made at the command line (an account, a key, a record's
    code), or for personal data it printed (``name`` is then every key shown)."""
    import getpass

    from data.access.queries import write_audit

    write_audit(
        session,
        actor=f"cli:{getpass.getuser()}"[:128],
        role="admin",
        method="CLI",
        route=f"gridwork {command}",
        subject_type=kind,
        subject_ids=[key[:64] for key in ([name] if isinstance(name, str) else name)],
        reason=reason,
    )


@user_app.command("list")
def user_list() -> None:
    """Every account: name, role, whether it is active."""
    from data.access.queries import list_users
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        users = list_users(session)
    table = Table("user", "role", "active", "created")
    for u in users:
        table.add_row(u["username"], u["role"], "yes" if u["active"] else "no", u["created_at"])
    out.print(table)


def _set_active(username: str, active: bool) -> None:
    from data.access.queries import set_user_active
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        set_user_active(session, username, active)
        _audit_cli(session, f"user {'enable' if active else 'disable'}", "user", username)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: their tokens, cookies and API keys are refused from the next request."""
    _set_active(username, False)
    out.print(f"{username} is disabled (and so are their API keys)")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled user again (their keys that were not revoked work again)."""
    _set_active(username, True)
    out.print(f"{username} is enabled")


@user_app.command("remove")
def user_remove(username: str, yes: Yes = False) -> None:
    """Delete a user with their areas and API keys (the audit log keeps their name)."""
    from data.access.queries import remove_user
    from data.db import transaction

    if not yes:
        typer.confirm(f"remove user {username} and their API keys?", abort=True)
    with transaction(_engine(_settings())) as session:
        keys = remove_user(session, username)
        _audit_cli(session, "user remove", "user", username)
    out.print(f"{username} removed, with {keys} API key(s)")


@key_app.command("list")
def key_list() -> None:
    """Every API key (never the key itself): prefix, role, owner, created, revoked, live."""
    from data.access.queries import list_api_keys
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        keys = list_api_keys(session)
    table = Table("name", "prefix", "role", "user", "created", "revoked", "live")
    for k in keys:
        table.add_row(
            k["name"],
            k["prefix"],
            k["role"],
            k["owner"] or "-",
            k["created_at"],
            k["revoked_at"] or "-",
            "yes" if k["live"] else "no",
        )
    out.print(table)


@key_app.command("revoke")
def key_revoke(name: str) -> None:
    """Revoke an API key: it is refused from its next request, in every API process."""
    from data.access.queries import revoke_api_key
    from data.db import transaction

    with transaction(_engine(_settings())) as session:
        newly = revoke_api_key(session, name)
        if newly:
            _audit_cli(session, "key revoke", "api_key", name)
    out.print(f"key {name} revoked" if newly else f"key {name} was already revoked")


@app.command("backup")
def backup(
    file: Annotated[
        Path | None, typer.Argument(help="where to write (default: gridwork-<db>-<time>.dump)")
    ] = None,
) -> None:
    """Write the whole state (every layer, user, audit row, position) to one pg_dump archive."""
    from data.backup import backup as run

    path = run(_settings(), file)
    out.print(f"backup written to {path} ({path.stat().st_size:,} bytes, mode 600)")


@app.command("restore")
def restore(file: Path, yes: Yes = False) -> None:
    """Replace the database's contents with a backup, all or nothing (pg_restore --clean)."""
    from data.backup import restore as run

    if not yes:
        typer.confirm(f"replace the database's contents with {file}?", abort=True)
    run(_settings(), file)
    out.print(f"restored {file}")


@app.command("map")
def map_file(
    kind: Annotated[str, typer.Argument(help="grids, workload, incidents or coverage")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the HTML file to write")],
    facility: Annotated[
        str | None, typer.Option(help="facility kind, for coverage (e.g. clinic)")
    ] = None,
    minutes: Annotated[float, typer.Option(help="walking minutes, for coverage")] = 10.0,
    days: Annotated[int, typer.Option(help="days back, for incidents")] = 30,
) -> None:
    """Write one map as a standalone HTML file (Leaflet inlined: it opens without a server)."""
    from api.pages.frame import gettext, ngettext
    from data.access.queries import AreaScope
    from data.coverage.service import NetworkCache
    from maps.pages import build, render

    if kind not in ("grids", "workload", "incidents", "coverage"):
        raise InvalidInput("one of grids, workload, incidents, coverage", field="kind")
    if kind == "coverage" and not facility:
        raise InvalidInput("a coverage map needs --facility KIND", field="facility")
    settings = _settings()
    with _engine(settings).connect() as conn:
        page = render(
            lambda: build(
                conn,
                kind,  # type: ignore[arg-type]
                scope=AreaScope.everywhere(),
                settings=settings,
                cache=NetworkCache(),
                asset_mode="inline",
                facility=facility,
                minutes=minutes,
                days=days,
                gettext=lambda message: gettext(settings.locale, message),  # the deployment's
                ngettext=lambda one, many, n: ngettext(settings.locale, one, many, n),
            )
        )
    output.write_text(page, encoding="utf-8")
    out.print(f"wrote {output} ({len(page.encode()) / 1e6:.1f} MB)")


plan_app = typer.Typer(no_args_is_help=True, help="Split communities into grids; publish plans.")
app.add_typer(plan_app, name="plan")


@plan_app.command("split")
def plan_split(
    community: str,
    min: Annotated[int, typer.Option("--min", help="fewest households per grid")] = 150,
    max: Annotated[int, typer.Option("--max", help="most households per grid")] = 180,
    seed: int = 1,
) -> None:
    """Draft a plan: the community's units split into grids inside the band."""
    from data.db import transaction
    from data.planning.service import draft_plan, plan_summary

    settings = _settings()
    with transaction(_engine(settings)) as session:
        plan_id = draft_plan(
            session,
            community,
            min_households=min,
            max_households=max,
            seed=seed,
            author="cli",
            settings=settings,
        )
        summary = plan_summary(session, plan_id)
    _print_plan(summary)


def _print_plan(summary: dict[str, object]) -> None:
    metrics = summary["metrics"]
    assert isinstance(metrics, dict)
    table = Table("grid", "households", "Polsby-Popper", "road share", "flag")
    grids = summary["grids"]
    assert isinstance(grids, list)
    for g in grids:
        m = g["metrics"]
        table.add_row(
            g["code"],
            str(g["households"]),
            f"{m.get('polsby_popper', 0):.2f}",
            f"{m.get('road_share', 0):.0%}",
            "!" if g["flagged"] else "",
        )
    out.print(table)
    out.print(
        f"plan {summary['id']} ({summary['status']}): {metrics['n_grids']} grids, "
        f"{metrics['in_band_share']:.0%} in band, mean Polsby-Popper "
        f"{metrics['polsby_popper_mean']:.2f}, {metrics['road_share']:.0%} of internal "
        f"boundary on roads, {metrics['shared_buildings']} shared building(s)"
    )
    issues = summary["issues"]
    assert isinstance(issues, list)
    for issue in issues:
        out.print(f"[yellow]{issue['kind']}[/]: {issue['detail']}")


@plan_app.command("show")
def plan_show(plan: int) -> None:
    """A plan's grids and metrics."""
    from data.db import transaction
    from data.planning.service import plan_summary

    with transaction(_engine(_settings())) as session:
        _print_plan(plan_summary(session, plan))


@plan_app.command("publish")
def plan_publish(
    plan: int,
    effective: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD, default today in GRIDWORK_TIMEZONE")
    ] = None,
) -> None:
    """Make a draft's grids current; the old grids stay in history; every point is reassigned."""
    from datetime import date

    from data.db import transaction
    from data.planning.service import publish

    settings = _settings()
    try:
        day = date.fromisoformat(effective) if effective else settings.today()
    except ValueError as exc:
        raise InvalidInput(f"'{effective}' is not a YYYY-MM-DD date", field="effective") from exc
    with transaction(_engine(settings)) as session:
        result = publish(session, plan, effective=day, settings=settings)
    out.print(
        f"plan {plan} published for {result['community']} from {result['effective']}: "
        f"{result['grids_created']} grids replace {result['grids_closed']}"
    )


@plan_app.command("report")
def plan_report(
    min: Annotated[int | None, typer.Option("--min")] = None,
    max: Annotated[int | None, typer.Option("--max")] = None,
) -> None:
    """Communities and grids outside the household band."""
    from data.db import transaction
    from data.planning.service import oversize_report

    settings = _settings()
    lo, hi = min or settings.household_min, max or settings.household_max
    with transaction(_engine(settings)) as session:
        rows = oversize_report(session, min_households=lo, max_households=hi)
    table = Table("community", "name", "households", "grids", f"> {hi}", f"< {lo}")
    for r in rows:
        table.add_row(
            r["code"],
            r["name"],
            str(r["households"]),
            str(r["grids"]),
            str(r["grids_over"]),
            str(r["grids_under"]),
        )
    out.print(table if rows else f"every community's grids hold {lo}-{hi} households")


batch_app = typer.Typer(
    no_args_is_help=True, help="Batch work on Dask (a LocalCluster, or --scheduler tcp://…)."
)
app.add_typer(batch_app, name="batch")
Scheduler = Annotated[
    str | None, typer.Option(help="a dask scheduler, tcp://host:8786 (default: a LocalCluster)")
]
Workers = Annotated[int | None, typer.Option(help="LocalCluster worker processes (default: CPUs)")]
Serial = Annotated[bool, typer.Option(help="run every task here, one after another")]


@batch_app.command("plan")
def batch_plan(
    scheduler: Scheduler = None, workers: Workers = None, serial: Serial = False, seed: int = 1
) -> None:
    """A draft plan for every community outside the household band."""
    from data.batch.plan import plan_oversized
    from data.batch.runner import open_runner

    settings = _settings()
    with open_runner(scheduler, workers=workers, serial=serial) as runner:
        batch = plan_oversized(_engine(settings), runner, settings=settings, seed=seed)
    table = Table("community", "households", "plan", "grids", "in band", "issue")
    for c in batch.communities:
        band = "-" if c.in_band_share is None else f"{c.in_band_share:.0%}"
        issue = c.error or "; ".join(c.issues)
        table.add_row(c.community, str(c.households), str(c.plan_id or "-"), str(c.grids), band,
                      issue)  # fmt: skip
    out.print(table)
    out.print(f"{batch.planned} drafts on {batch.runner} in {batch.total_s:.1f} s")


@batch_app.command("coverage")
def batch_coverage(
    scheduler: Scheduler = None,
    workers: Workers = None,
    serial: Serial = False,
    minutes: float = 15,
) -> None:
    """Walking coverage of every facility kind over the whole city."""
    from data.batch.coverage import cover_every_kind
    from data.batch.runner import open_runner

    settings = _settings()
    with open_runner(scheduler, workers=workers, serial=serial) as runner:
        batch = cover_every_kind(
            _engine(settings), runner, minutes=minutes, metric_override=settings.metric_epsg
        )
    table = Table("kind", batch.level, "households", "covered", "share")
    for k in batch.kinds:
        share = k.household_share
        table.add_row(k.kind, str(len(k.areas)), str(int(k.areas["households"].sum())),
                      str(int(k.areas["covered_households"].sum())),
                      "-" if share is None else f"{share:.1%}")  # fmt: skip
    out.print(table)
    out.print(f"{len(batch.kinds)} kinds within {minutes:g} min on {batch.runner} "
              f"in {batch.total_s:.1f} s")  # fmt: skip


@batch_app.command("assign")
def batch_assign(
    scheduler: Scheduler = None, workers: Workers = None, serial: Serial = False
) -> None:
    """Reassign every household, facility and incident to its grid, in one transaction."""
    from data.batch.assign import assign_everything
    from data.batch.runner import open_runner

    settings = _settings()
    with open_runner(scheduler, workers=workers, serial=serial) as runner:
        batch = assign_everything(_engine(settings), runner, settings=settings)
    for t in batch.tables:
        r = t.result
        out.print(f"{r.table}: {r.rows} rows, {r.changed} changed, {r.snapped} snapped, "
                  f"{r.unassigned} unassigned")  # fmt: skip
    out.print(f"on {batch.runner} in {batch.total_s:.1f} s")


def main() -> None:
    """Entry point: domain errors become one clear line and a non-zero exit, not a traceback."""
    try:
        app()
    except ImportRejected as exc:
        for r in exc.rejects:
            err.print(f"[red]rejected[/] {exc.source}: {r}")
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    except GridworkError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
