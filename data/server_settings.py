"""The private cluster's memory and checkpoint settings, sized from the machine it runs on.

initdb writes PostgreSQL's defaults: ``shared_buffers`` 128 MB, ``max_wal_size`` 1 GB,
``maintenance_work_mem`` 64 MB, ``work_mem`` 4 MB. They let PostgreSQL start on any machine
and are far too small for the store gridwork keeps at a city's size: at the megacity's full
size (10 M households, 2.4 GB of household indexes) reassigning every household is one
``UPDATE`` that spends most of its 40 minutes evicting index pages from 128 MB of buffers and
checkpointing every gigabyte of WAL, each checkpoint followed by a full-page image of every
page touched again (docs/scale.md). A DBA would size these first; a user of the private
cluster has no DBA.

So :func:`write` puts the usual starting points into ``gridwork.conf`` in the data folder,
included from ``postgresql.conf`` (its last line), every time the cluster starts (the
machine, or its container's memory limit, may have changed): a quarter of the memory for
``shared_buffers`` (at most 8 GB), half for ``effective_cache_size``, a sixteenth for
``maintenance_work_mem`` (index builds, VACUUM; at most 2 GB), ``work_mem`` of a 256th (4–64
MB), and WAL for a quarter of an hour between checkpoints (``max_wal_size`` a quarter of the
memory, 1–16 GB; ``checkpoint_timeout`` 15 min). ``ALTER SYSTEM`` still wins:
``postgresql.auto.conf`` is read after ``postgresql.conf``. A cluster made with
``sized=False`` (``data.cluster.LocalCluster``) keeps initdb's defaults, for the benchmark
that compares both (``python -m bench.cluster_settings``).
"""

from __future__ import annotations

import os
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
FILE = "gridwork.conf"
INCLUDE = f"include_if_exists = '{FILE}'"

_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its container's limit if that
    is lower (``/proc/meminfo`` shows the host's inside a container)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in _CGROUP_LIMITS:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value))
    return total


def _clamp(value: float, lo: int, hi: int) -> int:
    return int(min(max(value, lo), hi))


def _mb(n: int) -> str:
    return f"{n // MiB}MB"


def sized(memory: int) -> dict[str, str]:
    """The settings for a server that may use ``memory`` bytes (see the module docstring)."""
    return {
        "shared_buffers": _mb(_clamp(memory / 4, 128 * MiB, 8 * GiB)),
        "effective_cache_size": _mb(_clamp(memory / 2, 512 * MiB, 64 * GiB)),
        "maintenance_work_mem": _mb(_clamp(memory / 16, 64 * MiB, 2 * GiB)),
        "work_mem": _mb(_clamp(memory / 256, 4 * MiB, 64 * MiB)),
        "max_wal_size": _mb(_clamp(memory / 4, 1 * GiB, 16 * GiB)),
        "checkpoint_timeout": "15min",
    }


def write(data_dir: Path, settings: dict[str, str]) -> Path:
    """Write ``settings`` as ``gridwork.conf`` in ``data_dir`` (empty: the defaults) and make
    sure ``postgresql.conf`` includes it; the file written."""
    conf = data_dir / "postgresql.conf"
    lines = conf.read_text().splitlines()
    if INCLUDE not in lines:
        with conf.open("a") as f:
            f.write(f"\n# gridwork's sizing for this machine, written at each start\n{INCLUDE}\n")
    path = data_dir / FILE
    body = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
    path.write_text(
        "# Written by gridwork at each start (data/server_settings.py); ALTER SYSTEM wins.\n" + body
    )
    return path
