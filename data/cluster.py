"""A private PostGIS cluster that gridwork owns, so a new user needs no database set-up.

The cluster lives under the state folder (``.gridwork/pg`` by default), listens only on a
loopback port chosen when it is created, and requires a password that is generated then and
kept in a file only the owner can read. PostgreSQL refuses to run as root, so when gridwork
runs as root the server runs as the unprivileged ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from data import server_settings
from geo.errors import Unavailable

SUPERUSER = "gridwork"
# What the API server connects as: no superuser, owns nothing; its rights on each database are
# granted by migration 0009 (INSERT and SELECT only on the audit log).
APP_ROLE = "gridwork_app"
POSTGIS_PACKAGE = "postgresql-{major}-postgis-3"
PGROUTING_PACKAGE = "postgresql-{major}-pgrouting"
_RUN_AS = "postgres"
_FALLBACK_ROOT = Path("/var/lib/gridwork")


@dataclass(frozen=True)
class ClusterStatus:
    """What ``gridwork db status`` prints."""

    data_dir: Path
    initialised: bool
    running: bool
    port: int | None
    url: str | None


def find_bindir() -> Path:
    """Locate the newest installed PostgreSQL server binaries (Debian keeps them off PATH)."""
    override = os.environ.get("GRIDWORK_PG_BINDIR")
    candidates: list[Path] = [Path(override)] if override else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise Unavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install 'postgresql' "
        "(Debian/Ubuntu: apt-get install postgresql), or set DATABASE_URL to a server with PostGIS"
    )


def server_major(bindir: Path) -> int:
    out = subprocess.run(
        [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[-1].split(".")[0])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    """Create, start, stop and describe the private cluster under ``state_dir``."""

    def __init__(self, state_dir: Path, database: str = "gridwork", *, sized: bool = True) -> None:
        self.state_dir = state_dir.expanduser().resolve()
        self.database = database
        # Memory and checkpoints sized from the machine (data.server_settings); False keeps
        # initdb's defaults (the benchmark that compares both).
        self.sized = sized
        self.home = self.state_dir / "pg"
        self._as_root = os.geteuid() == 0

    # -- where things are -------------------------------------------------------------------
    @property
    def server_dir(self) -> Path:
        """Server-owned folder; outside the state folder only if ``postgres`` can't reach it."""
        pointer = self.home / "server-dir"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        return self.home / "server"

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.server_dir / "server.log"

    @property
    def password(self) -> str:
        return (self.home / "password").read_text().strip()

    @property
    def port(self) -> int | None:
        f = self.home / "port"
        return int(f.read_text()) if f.exists() else None

    @property
    def app_password(self) -> str:
        """The app role's password, made once (mode 600) next to the superuser's."""
        path = self.home / "app-password"
        for _ in range(50):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                password = path.read_text().strip()
                if password:
                    return password
                time.sleep(0.02)  # another process is writing it
                continue
            password = secrets.token_urlsafe(24)
            with os.fdopen(fd, "w") as f:
                f.write(password)
            return password
        raise Unavailable(f"{path} is empty: delete it and run 'gridwork db up' again")

    def app_url(self, database: str | None = None) -> str:
        """The URL the API server uses: the app's own role (see :meth:`ensure_app_role`)."""
        return (
            f"postgresql+psycopg://{APP_ROLE}:{self.app_password}@127.0.0.1:{self.port}/"
            f"{database or self.database}"
        )

    def ensure_app_role(self) -> None:
        """Create the app's login role, or give it back its password and its limits."""
        ensure_app_role(self.url("postgres"), self.app_password)

    def url(self, database: str | None = None) -> str:
        return (
            f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/"
            f"{database or self.database}"
        )

    # -- running commands -------------------------------------------------------------------
    def _run(
        self, args: list[str], *, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", _RUN_AS, "--", *args] if self._as_root else args
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if check and proc.returncode != 0:
            raise Unavailable(
                f"{Path(args[0]).name} failed: {(proc.stderr or proc.stdout).strip()}"
            )
        return proc

    def _give_to_server(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, user=_RUN_AS, group=_RUN_AS)

    def _server_can_reach(self, path: Path) -> bool:
        if not self._as_root:
            return True
        return (
            self._run(["test", "-r", str(path), "-a", "-x", str(path)], check=False).returncode == 0
        )

    # -- life cycle ---------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        initialised = (self.data_dir / "PG_VERSION").exists()
        running = False
        if initialised:
            bindir = find_bindir()
            running = (
                self._run(
                    [str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
                ).returncode
                == 0
            )
        return ClusterStatus(
            data_dir=self.data_dir,
            initialised=initialised,
            running=running,
            port=self.port,
            url=self.url().replace(self.password, "***") if initialised else None,
        )

    def make_server_dir(self) -> Path:
        """The home (mode 700) and the folder the server owns, outside the state folder only
        when, run as root, the ``postgres`` user cannot reach it; for :meth:`init` and for a
        standby copied into it (:func:`data.replica.make_standby`)."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        server_dir = self.home / "server"
        server_dir.mkdir(exist_ok=True)
        self._give_to_server(server_dir)
        if self._as_root:
            os.chmod(self.home, 0o711)  # noqa: S103 - postgres may pass through, not list
            if not self._server_can_reach(server_dir):
                digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
                server_dir = _FALLBACK_ROOT / digest
                server_dir.mkdir(parents=True, exist_ok=True)
                os.chmod(_FALLBACK_ROOT, 0o755)  # noqa: S103 - a folder of folders, each 0700
                self._give_to_server(server_dir)
                (self.home / "server-dir").write_text(str(server_dir))
        return server_dir

    def keep_password(self, password: str) -> None:
        """The superuser's password, in a file only the owner reads."""
        pw_file = self.home / "password"
        pw_file.write_text(password)
        os.chmod(pw_file, 0o600)

    def init(self, *, sync: bool = True) -> None:
        """Create the cluster once: password auth on loopback only, no trust anywhere.
        ``sync=False`` skips flushing the new files to disk (a test's throw-away cluster)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = find_bindir()
        server_dir = self.make_server_dir()
        password = secrets.token_urlsafe(24)
        self.keep_password(password)
        init_pw = server_dir / ".initpw"
        init_pw.write_text(password)
        self._give_to_server(init_pw)
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(server_dir / "data"),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(init_pw),
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                    *([] if sync else ["--no-sync"]),
                ]
            )
        finally:
            init_pw.unlink(missing_ok=True)
        (self.home / "port").write_text(str(_free_port()))

    def init_standby_of(self, primary: LocalCluster, *, sync: bool = True) -> None:
        """Make this cluster a hot standby of the running ``primary``: ``pg_basebackup -R``
        copies its files and writes ``primary_conninfo`` and ``standby.signal``, so that,
        started, it replays the primary's WAL as it is streamed and answers reads only.

        The primary needs nothing beyond what :meth:`init` made: PostgreSQL 15's defaults
        (``wal_level=replica``, ``max_wal_senders=10``, ``hot_standby=on``) and initdb's
        ``host replication all 127.0.0.1/32 scram-sha-256`` line; the superuser, who may
        replicate, connects. The copy keeps the primary's passwords (same roles); the
        password travels in the environment, never on the command line. ``sync=False`` skips
        flushing the copy to disk (tests: a standby lost in a crash is simply made again)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        if primary.port is None:
            raise Unavailable(f"the primary under {primary.state_dir} was never started")
        bindir = find_bindir()
        basebackup = bindir / "pg_basebackup"
        if not basebackup.exists():
            raise Unavailable(
                f"{basebackup} not found: install the PostgreSQL server package "
                "(Debian/Ubuntu: apt-get install postgresql) to make a standby"
            )
        server_dir = self.make_server_dir()
        self.keep_password(primary.password)
        app_password = self.home / "app-password"
        app_password.write_text(primary.app_password)
        os.chmod(app_password, 0o600)
        env = {**os.environ, "PGPASSWORD": primary.password, "PGAPPNAME": "gridwork-standby"}
        proc = self._run(
            [
                str(basebackup),
                "-D",
                str(server_dir / "data"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                SUPERUSER,
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-password",
                *([] if sync else ["--no-sync"]),
            ],
            check=False,
            env=env,
        )
        if proc.returncode != 0:
            message = (proc.stderr or proc.stdout).strip().replace(primary.password, "***")
            raise Unavailable(f"pg_basebackup failed: {message}")
        (self.home / "port").write_text(str(_free_port()))

    def start(self) -> None:
        bindir = find_bindir()
        if self.status().running:
            return
        port = self.port or _free_port()
        if _port_in_use(port):
            port = _free_port()
        (self.home / "port").write_text(str(port))
        conf = server_settings.write(
            self.data_dir,
            server_settings.sized(server_settings.machine_memory()) if self.sized else {},
        )
        self._give_to_server(conf)
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        proc = self._run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                opts,
            ],
            check=False,
        )
        if proc.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = self.log_file.read_text()[-800:]
            raise Unavailable(f"local PostGIS did not start: {proc.stderr.strip()} {tail}")

    def stop(self) -> None:
        if not self.status().running:
            return
        bindir = find_bindir()
        self._run([str(bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"])

    def remove(self) -> None:
        """Stop the server and delete the cluster and its files (tests, a standby given up)."""
        if (self.data_dir / "PG_VERSION").exists():
            self.stop()
        server_dir = self.server_dir
        shutil.rmtree(server_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def up(self) -> str:
        """Initialise if needed, start if stopped, create the database; return its URL."""
        self.init()
        self.start()
        ensure_database(self.url(), self.database)
        self.ensure_app_role()
        return self.url()


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def ensure_database(url: str, database: str, *, wait_s: float = 30.0) -> None:
    """Create the database if missing and its extensions; name the package if PostGIS is absent."""
    admin_url = _libpq_url(url).rsplit("/", 1)[0] + "/postgres"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
            time.sleep(0.3)
    with conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    ensure_extensions(_libpq_url(url).rsplit("/", 1)[0] + "/" + database)


def ensure_app_role(url: str, password: str, role: str = APP_ROLE) -> None:
    """Make ``role`` a login role with ``password`` and nothing more: no superuser, no
    CREATEDB, CREATEROLE, replication or RLS bypass. Connects with ``url`` (a superuser's, or
    a role with CREATEROLE). Its rights in each database come from the migrations."""
    limits = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        for verb in ("CREATE", "ALTER"):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if verb == "CREATE" and exists:
                continue
            try:
                conn.execute(
                    sql.SQL("{} ROLE {} {} PASSWORD {}").format(
                        sql.SQL(verb), sql.Identifier(role), limits, sql.Literal(password)
                    )
                )
                return
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                continue  # made meanwhile by another process: set its password instead


def drop_database(url: str, database: str) -> None:
    """Drop ``database`` on the server of ``url``, closing its connections (tests, benches)."""
    admin_url = _libpq_url(url).rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def ensure_extensions(libpq_url: str) -> None:
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        available = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM pg_available_extensions WHERE name IN ('postgis', 'pgrouting')"
            )
        }
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
        if "postgis" not in available:
            raise Unavailable(
                "PostGIS is not installed on this PostgreSQL server: install "
                f"'{POSTGIS_PACKAGE.format(major=major)}' (apt-get install -y "
                f"{POSTGIS_PACKAGE.format(major=major)})"
            )
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if "pgrouting" in available:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
