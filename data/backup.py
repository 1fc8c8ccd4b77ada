"""Back up and restore the whole state: one ``pg_dump`` archive of the database.

Everything gridwork knows lives in its database (layers, plans, users, API key digests, the
audit log, device positions), so one custom-format archive is the whole state. The server
binaries gridwork already uses (:func:`data.cluster.find_bindir`) do the work; they connect
over TCP as the database user, with the password passed in the environment, never on the
command line (where other users of the machine could read it in the process list).

An archive holds personal data: it is written with mode 600, under a temporary name first, so
that an interrupted backup never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from data.access.queries import AuditSpan, audit_span, write_audit
from data.changes import CHANNEL, RESTORED
from data.cluster import find_bindir
from data.db import database_url, migrate
from data.settings import Settings
from geo.errors import InvalidInput, Unavailable

_MAGIC = b"PGDMP"  # the first bytes of every pg_dump custom-format archive


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment carrying it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None)
    return uri.render_as_string(hide_password=False), env


def _run(tool: str, args: list[str], env: dict[str, str], *, what: str | None = None) -> str:
    """Run one of the server's binaries; its output, or ``Unavailable`` saying ``what`` (the
    tool's name by default) failed and why, with the password starred out."""
    proc = subprocess.run(
        [str(find_bindir() / tool), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise Unavailable(f"{what or tool} failed: {_hidden(proc.stderr or proc.stdout, env)}")
    return proc.stdout


def default_backup_path(url: str, *, now: datetime | None = None) -> Path:
    """``gridwork-<database>-<UTC time>.dump`` in the current folder (not in the state
    folder, which ``make clean`` deletes)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path.cwd() / f"gridwork-{make_url(url).database}-{stamp}.dump"


def backup(settings: Settings, path: Path | None = None) -> Path:
    """Dump the whole database to ``path`` (pg_dump custom format); refuse to overwrite."""
    url = database_url(settings)
    target = (path or default_backup_path(url)).expanduser().resolve()
    if target.exists():
        raise InvalidInput(f"{target} already exists; choose another name", field="file")
    if not target.parent.is_dir():
        raise InvalidInput(f"folder {target.parent} does not exist", field="file")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)
    try:
        uri, env = _libpq(url)
        _run("pg_dump", [f"--dbname={uri}", "--format=custom", f"--file={partial}"], env)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def restore(settings: Settings, path: Path) -> str:
    """Replace the database's contents with the archive at ``path``, all or nothing; the
    audit entry it wrote (also returned).

    ``pg_restore --clean --if-exists`` drops each object of the archive before recreating it,
    in one transaction: if anything fails, the database is left as it was. Objects that are
    not in the archive (say, a table from a newer release) are left alone. The restored schema
    is then migrated to the current release (so an older archive gets, for instance, the app
    role's rights).

    Restoring an older archive replaces the audit log with the archive's: the rows written
    since are gone. So a restore writes an audit entry saying which archive was restored and
    which period of audit rows it replaced, and tells every running server (``NOTIFY``
    ``gridwork_change, 'restore'``), which drops its caches and pooled connections.
    """
    source = path.expanduser().resolve()
    if not source.is_file():
        raise InvalidInput(f"{source} does not exist", field="file")
    with source.open("rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise InvalidInput(
                f"{source} is not a gridwork backup (pg_dump custom format)", field="file"
            )
    url = database_url(settings)
    replaced = _audit_span(url)
    _restore_archive(source, url)
    migrate(url)
    return _record_restore(url, source, replaced)


def _restore_archive(source: Path, url: str) -> None:
    """``pg_restore --clean --if-exists`` run as one transaction by ``psql``.

    PostgreSQL 15's ``pg_restore --clean`` cannot clean a partitioned table (``position``,
    migration 0019): it drops each partition's copy of the table's keys first, which
    PostgreSQL refuses. So the partitioned tables that the archive holds too are dropped
    first, in the same transaction, with their partitions; the archive's own drops of them
    then find nothing, and it recreates them."""
    uri, env = _libpq(url)
    listing = _run("pg_restore", ["--list", str(source)], env)
    in_archive = {
        parts[5]
        for line in listing.splitlines()
        if len(parts := line.split()) > 5 and parts[3:5] == ["TABLE", "public"]
    }
    first = "".join(
        f'DROP TABLE IF EXISTS public."{name}" CASCADE;\n'
        for name in sorted(in_archive & _partitioned_tables(url))
    )
    # Written out first (mode 700 folder: it holds personal data) and only then run: a
    # script cut short by a failing pg_restore must never be committed as a restore.
    with tempfile.TemporaryDirectory(prefix="gridwork-restore-") as folder:
        script = Path(folder) / "restore.sql"
        clean = ["--clean", "--if-exists", "--no-owner", f"--file={script}", str(source)]
        _run("pg_restore", clean, env)
        once = ["--single-transaction", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]
        steps = [f"--command={first or 'SELECT 1'}", f"--file={script}"]
        _run("psql", [f"--dbname={uri}", *once, *steps], env, what="restore")


def _hidden(message: str, env: dict[str, str]) -> str:
    return message.strip().replace(env.get("PGPASSWORD", "\0"), "***")


def _partitioned_tables(url: str) -> set[str]:
    """The partitioned tables of the schema ``public`` (none: no database yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c "
                "ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public'"
            )
            return {str(r[0]) for r in rows}
    except Exception:  # nothing to drop
        return set()
    finally:
        engine.dispose()


def _audit_span(url: str) -> AuditSpan | None:
    """What the audit log holds now (None: no database or no log yet, e.g. a new server)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return audit_span(conn)
    except Exception:  # nothing to replace
        return None
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _record_restore(url: str, source: Path, replaced: AuditSpan | None) -> str:
    """The restore's own audit entry, and the NOTIFY that tells every server, at one commit."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            restored = audit_span(conn)
            said = (
                f"restored {source} (sha256 {_sha256(source)[:16]}); it replaced "
                f"{replaced.describe() if replaced else 'a database without an audit log'}; "
                f"the archive's log holds {restored.describe()}"
            )
            if replaced and replaced.last and (not restored.last or replaced.last > restored.last):
                since = restored.last.isoformat() if restored.last else "the beginning"
                said += (
                    f"; the audit rows written after {since} up to "
                    f"{replaced.last.isoformat()} are no longer in the log"
                )
            user = "unknown"
            with contextlib.suppress(Exception):
                user = getpass.getuser()
            write_audit(
                conn,
                actor=f"cli:{user}"[:128],
                role="admin",
                method="RESTORE",
                route="gridwork restore",
                subject_type="backup",
                subject_ids=[source.name[:64]],
                reason=said,
            )
            conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, RESTORED))
    finally:
        engine.dispose()
    return said
