"""Where a batch job's tasks run: here, one after another, or on a dask.distributed cluster.

Every batch job is written once against :class:`Runner` and reads and writes the store only
in the calling process; the tasks are pure (:mod:`geo`) and get plain arrays and frames, never
a database session. So a job gives the same answer on either runner, and a test can say so.

:class:`SerialRunner` runs each task when it is reached, in order. :class:`DaskRunner` submits
them to a ``distributed.Client``: a ``LocalCluster`` on this machine by default, or the
scheduler at ``tcp://host:8786`` of a real cluster (whose workers must have gridwork
installed). It keeps at most ``window`` tasks in flight, so the driver never reads the whole
city ahead of the workers, and yields results as they finish. What every task needs (the
grid index, the road graph) is shipped once per worker with ``Client.scatter``.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from geo.errors import InvalidInput

if TYPE_CHECKING:
    from distributed import Client

A = TypeVar("A")
R = TypeVar("R")


class Runner(ABC):
    """Runs ``fn(item, **shared)`` for each item; results come back paired with their item."""

    name: str
    workers: int

    def share(self, **values: Any) -> Mapping[str, Any]:
        """Values every task gets as keyword arguments, sent to each worker once."""
        return values

    def imap(
        self,
        fn: Callable[..., R],
        items: Iterable[A],
        *,
        shared: Mapping[str, Any] | None = None,
        label: str = "task",
    ) -> Iterator[tuple[A, R]]:
        """``(item, fn(item, **shared))`` for every item, as tasks finish (order not kept);
        ``label`` names the tasks where a cluster shows them."""
        return self._results(fn, items, shared or {}, label)

    @abstractmethod
    def _results(
        self, fn: Callable[..., R], items: Iterable[A], shared: Mapping[str, Any], label: str
    ) -> Iterator[tuple[A, R]]:
        """What :meth:`imap` promises, the way this runner runs tasks."""


class SerialRunner(Runner):
    """Every task in this process, in order: the reference the distributed run must equal."""

    name = "serial"
    workers = 1

    def _results(
        self, fn: Callable[..., R], items: Iterable[A], shared: Mapping[str, Any], label: str
    ) -> Iterator[tuple[A, R]]:
        for item in items:
            yield item, fn(item, **shared)


class DaskRunner(Runner):
    """Tasks on a ``distributed.Client``; at most ``window`` in flight (default: 2 per thread)."""

    name = "dask"

    def __init__(self, client: Client, *, window: int | None = None) -> None:
        self.client = client
        threads = sum(client.nthreads().values()) or 1
        self.workers = len(client.nthreads()) or 1
        self.window = window or 2 * threads

    def share(self, **values: Any) -> Mapping[str, Any]:
        # One scatter per value, to every worker: a task then finds it in memory.
        return {
            name: self.client.scatter(value, broadcast=True, hash=False)
            for name, value in values.items()
        }

    def _results(
        self, fn: Callable[..., R], items: Iterable[A], shared: Mapping[str, Any], label: str
    ) -> Iterator[tuple[A, R]]:
        from distributed import as_completed

        source = iter(items)
        pending: dict[object, A] = {}
        counter = itertools.count()
        running = as_completed()

        def submit(item: A) -> None:
            # pure=False: a task's key must not need hashing its (large) arguments.
            future = self.client.submit(
                fn, item, key=f"{label}-{next(counter)}", pure=False, **shared
            )
            pending[future.key] = item
            running.add(future)

        for item in itertools.islice(source, self.window):
            submit(item)
        for future in running:
            item = pending.pop(future.key)
            result = future.result()  # a task's exception is raised here, as it was raised
            future.release()
            following = next(source, _END)
            if following is not _END:
                submit(following)  # type: ignore[arg-type]
            yield item, result


_END = object()


@contextmanager
def dask_runner(
    scheduler: str | None = None,
    *,
    workers: int = 2,
    threads_per_worker: int = 1,
    processes: bool = True,
    window: int | None = None,
) -> Iterator[DaskRunner]:
    """A :class:`DaskRunner` on the cluster at ``scheduler``, or on a ``LocalCluster`` of
    ``workers`` processes made for the job and closed after it (no dashboard: offline)."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield DaskRunner(client, window=window)
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield DaskRunner(client, window=window)


@contextmanager
def open_runner(
    scheduler: str | None = None, *, workers: int | None = None, serial: bool = False
) -> Iterator[Runner]:
    """What ``gridwork batch`` runs on: serially, a cluster's scheduler, or a LocalCluster of
    ``workers`` processes (default: one per CPU)."""
    if serial:
        yield SerialRunner()
        return
    if workers is not None and workers < 1:
        raise InvalidInput("must be ≥ 1", field="workers")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "ucx://")):
        raise InvalidInput(f"expected tcp://host:port, got {scheduler!r}", field="scheduler")
    with dask_runner(scheduler, workers=workers or os.cpu_count() or 1) as runner:
        yield runner
