"""`gridwork backup` and `gridwork restore`: a round trip brings every row back."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli import app
from data.backup import restore
from data.settings import Settings
from geo.errors import InvalidInput
from tests.conftest import own_database


@pytest.fixture(scope="module")
def scratch_url(server_url: str) -> str:
    return own_database(server_url, "gridwork_test_backup")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _counts(url: str) -> tuple[int, ...]:
    with psycopg.connect(_libpq(url)) as conn:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("district", "street", "audit_log")
        )


@pytest.mark.timeout(60)
def test_round_trip_brings_deleted_rows_back(scratch_url: str, tmp_path: Path) -> None:
    with psycopg.connect(_libpq(scratch_url)) as conn:
        conn.execute("INSERT INTO district (code, name) VALUES ('D1', 'Old Town')")
        conn.execute(
            "INSERT INTO street (code, name, district_id, geom) SELECT 'S1', '东街', id, "
            "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 1,0 0))', 4326) FROM district"
        )
        conn.execute(
            "INSERT INTO audit_log (actor, role, method, route, subject_type, subject_ids) "
            "VALUES ('t-admin', 'admin', 'GET', '/elders/1', 'elder', '{1}')"
        )
    before = _counts(scratch_url)
    assert before == (1, 1, 1)

    runner = CliRunner(env={"DATABASE_URL": scratch_url})
    archive = tmp_path / "state.dump"
    result = runner.invoke(app, ["backup", str(archive)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds personal data
    assert not list(tmp_path.glob("*.partial"))

    with psycopg.connect(_libpq(scratch_url)) as conn:
        conn.execute("DELETE FROM street")
        conn.execute("DELETE FROM district")
    assert _counts(scratch_url) == (0, 0, 1)

    result = runner.invoke(app, ["restore", str(archive), "--yes"])
    assert result.exit_code == 0, result.output
    district, street, audit = before
    assert _counts(scratch_url) == (district, street, audit + 1)  # + the restore's own entry
    with psycopg.connect(_libpq(scratch_url)) as conn:
        assert conn.execute("SELECT name FROM street").fetchone() == ("东街",)
        # The restored audit log is still append-only.
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM audit_log")


def test_backup_never_overwrites(scratch_url: str, tmp_path: Path) -> None:
    existing = tmp_path / "precious.dump"
    existing.write_bytes(b"keep me")
    result = CliRunner(env={"DATABASE_URL": scratch_url}).invoke(app, ["backup", str(existing)])
    assert isinstance(result.exception, InvalidInput)
    assert "already exists" in str(result.exception)
    assert existing.read_bytes() == b"keep me"


def test_restore_refuses_a_file_that_is_not_a_backup(scratch_url: str, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.dump"
    bogus.write_text("DROP TABLE district;")
    before = _counts(scratch_url)
    with pytest.raises(InvalidInput, match="not a gridwork backup"):
        restore(Settings(database_url=scratch_url), bogus)
    assert _counts(scratch_url) == before
