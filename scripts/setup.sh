#!/usr/bin/env bash
# Install everything gridwork needs on Debian/Ubuntu, then the Python environment.
# Idempotent: a second run only checks. Used by `make demo`, `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  [ $# -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null; then
    say "missing system packages: $* (install them with your package manager)"; exit 1
  fi
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  say "installing system packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_major() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1; }

# 1. System packages: Python with venv, PostgreSQL server, PostGIS, pgRouting, Chromium for map tests.
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v make >/dev/null || need+=(make)
command -v runuser >/dev/null || need+=(util-linux)
[ -n "$(pg_major)" ] || need+=(postgresql)
apt_install "${need[@]}"

major=$(pg_major)
need=()
[ -f "/usr/share/postgresql/$major/extension/postgis.control" ] || need+=("postgresql-$major-postgis-3")
[ -f "/usr/share/postgresql/$major/extension/pgrouting.control" ] || need+=("postgresql-$major-pgrouting")
if [ "${GRIDWORK_BROWSER_TESTS:-1}" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  # CJK glyphs for map screenshots (labels are bilingual, e.g. 社区 communities)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
fi
apt_install "${need[@]}"

# 2. Python environment from the lock file (re-installed only when the lock changes).
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.gridwork-lock
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages from requirements.lock"
  .venv/bin/python -m pip install -q --upgrade pip uv
  # Compiled ahead: with PYTHONDONTWRITEBYTECODE set (CI images often do) every Python
  # process, the tests' servers included, would otherwise compile ~10,000 modules again.
  .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -r requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi
