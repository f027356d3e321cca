"""Where parallel work runs: in this process, in joblib workers on this machine, or on a Dask cluster.

    from replicate.parallel import map_tasks
    scores = map_tasks(fit_fold, [(make_model, X, y, tr, te) for tr, te in splits], n_jobs=2, desc="CV folds")

``map_tasks(fn, tasks)`` returns ``[fn(*task) for task in tasks]``, in task order, computed

* in this process (``n_jobs=1``, no scheduler);
* in ``n_jobs`` joblib (loky) worker processes;
* on a Dask cluster when a scheduler is given or configured: ``scheduler="tcp://host:8786"``,
  a ``distributed.Client``, or the ``REPLICATE_SCHEDULER`` environment variable (which
  ``replicate book build --scheduler`` / ``make book SCHEDULER=...`` set for every chapter).
  ``scheduler=False`` forces local work whatever the environment says.

The route never changes a result: every task gets its inputs and seeds from its arguments, so
the same tasks give the same numbers in one process, in joblib workers or on a cluster (tested
on a two-worker ``distributed.LocalCluster``). Arguments shared by every task (the feature
matrix, the model factory) are sent to the cluster once (``Client.scatter``), not once per task.
Each call reports a :mod:`replicate.progress` stage with a task counter.

Workers of a remote cluster need the same environment (``pip install -e .`` of this checkout, the
same ``requirements.txt``) and, for feature extraction, the image files and the feature cache at
the same paths (a shared file system).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from . import progress

SCHEDULER_ENV = "REPLICATE_SCHEDULER"

_CLIENTS: dict[str, Any] = {}


def scheduler_address() -> str | None:
    """The Dask scheduler configured for this process (``REPLICATE_SCHEDULER``), or None."""
    return os.environ.get(SCHEDULER_ENV) or None


def resolve_scheduler(scheduler=None):
    """``None`` -> the configured scheduler (or None); ``False`` -> None; an address or a Client as given."""
    if scheduler is False:
        return None
    if scheduler is None:
        return scheduler_address()
    return scheduler


def get_client(scheduler, timeout: str = "30s"):
    """A ``distributed.Client`` for ``scheduler`` (an address, kept open and reused; or a Client itself);
    ``ConnectionError`` saying how to start a cluster when none answers within ``timeout``."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be a 'tcp://host:port' address or a distributed.Client, got {scheduler!r}")
    client = _CLIENTS.get(scheduler)
    if client is None or client.status not in ("running", "connecting"):
        try:
            client = Client(scheduler, timeout=timeout)
        except OSError as e:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {scheduler} ({e}); start one with "
                f"`dask scheduler` and `dask worker {scheduler}` (README: 'Past one machine')"
            ) from None
        _CLIENTS[scheduler] = client
    return client


def close_clients() -> None:
    """Close the clients :func:`get_client` keeps open (e.g. before the cluster goes away)."""
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        client.close()


def describe(scheduler) -> str | None:
    """A JSON-able name of the route (for ``info`` fields): the address, ``"distributed.Client"`` or None."""
    if scheduler is None:
        return None
    return scheduler if isinstance(scheduler, str) else "distributed.Client"


def _scatter_shared(client, tasks: list[tuple]) -> list[tuple]:
    """Send each argument that every task shares (the same object) to the cluster once."""
    if len(tasks) < 2:
        return tasks
    width = len(tasks[0])
    if any(len(t) != width for t in tasks):
        return tasks
    shared = {}
    for j in range(width):
        first = tasks[0][j]
        if all(t[j] is first for t in tasks) and not isinstance(first, (int, float, str, bool, type(None))):
            shared[j] = client.scatter(first, broadcast=True, hash=False)
    if not shared:
        return tasks
    return [tuple(shared.get(j, a) for j, a in enumerate(t)) for t in tasks]


def _call(fn, args):
    return fn(*args)


def map_tasks(
    fn: Callable,
    tasks: Sequence[tuple],
    *,
    n_jobs: int | None = 1,
    scheduler=None,
    desc: str = "tasks",
    unit: str = "task",
) -> list:
    """``[fn(*t) for t in tasks]`` in task order, in this process, joblib workers or on a Dask cluster.

    ``fn`` and the arguments must be picklable for joblib / Dask (cloudpickle: lambdas are fine).
    ``n_jobs``: joblib workers when no scheduler is in use (1 or None: in this process; -1: all cores).
    ``scheduler``: see the module doc. ``desc``/``unit`` name the progress stage and its counter.
    """
    tasks = [tuple(t) for t in tasks]
    sched = resolve_scheduler(scheduler)
    n = len(tasks)
    with progress.stage(desc, total=n, unit=unit, route=describe(sched) or f"n_jobs={n_jobs or 1}"):
        if sched is not None and n:
            return _map_dask(fn, tasks, sched)
        if n_jobs in (None, 1) or n <= 1:
            out = []
            for i, t in enumerate(tasks, 1):
                out.append(fn(*t))
                progress.tick(i)
            return out
        from joblib import Parallel, delayed

        out = []
        for i, r in enumerate(Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(*t) for t in tasks), 1):
            out.append(r)
            progress.tick(i)
        return out


def _map_dask(fn: Callable, tasks: list[tuple], scheduler) -> list:
    from distributed import as_completed

    client = get_client(scheduler)
    sent = _scatter_shared(client, tasks)
    futures = [client.submit(_call, fn, t, pure=False) for t in sent]
    for i, _ in enumerate(as_completed(futures), 1):
        progress.tick(i)
    return client.gather(futures)  # raises the first task's exception, as joblib does
