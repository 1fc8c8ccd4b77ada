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

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from data.cluster import find_bindir
from data.db import database_url
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


def _run(tool: str, args: list[str], url: str) -> None:
    uri, env = _libpq(url)
    binary = find_bindir() / tool
    proc = subprocess.run(
        [str(binary), f"--dbname={uri}", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().replace(env.get("PGPASSWORD", "\0"), "***")
        raise Unavailable(f"{tool} failed: {message}")


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
        _run("pg_dump", ["--format=custom", f"--file={partial}"], url)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def restore(settings: Settings, path: Path) -> None:
    """Replace the database's contents with the archive at ``path``, all or nothing.

    ``pg_restore --clean --if-exists`` drops each object of the archive before recreating it,
    in one transaction: if anything fails, the database is left as it was. Objects that are
    not in the archive (say, a table from a newer release) are left alone. The next start
    migrates the restored schema to the current release.
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
    _run(
        "pg_restore",
        ["--clean", "--if-exists", "--single-transaction", "--no-owner", str(source)],
        url,
    )
