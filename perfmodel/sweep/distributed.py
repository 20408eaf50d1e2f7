"""Multi-process sweeps on JAX's multi-controller runtime (``jax.distributed``).

One sweep, ``P`` processes (one per host, or one per GPU), one shared output directory:

* every process runs the same command; :func:`initialize` joins them with
  ``jax.distributed.initialize()``: with no arguments JAX finds the cluster itself
  (SLURM, Open MPI, TPU pods, ...), or with an explicit :class:`Cluster` (coordinator
  ``HOST:PORT``, process count, this process's id);
* process ``p`` of ``P`` takes the chunks ``c`` with ``c % P == p``
  (:func:`process_chunks`). A chunk's rows depend on ``(seed, spec, c)`` only, so the
  results are the rows of a single-process run with the same spec and seed, whatever
  ``P``; each process shards its chunks across its own local devices, and no data
  crosses processes during the sweep;
* the processes meet at a few points (:func:`agree`: each puts its status, and its
  error message if it has one, in the coordination service's key-value store, then
  waits at the service's barrier; one process's error stops all of them with the same
  one-line message instead of leaving the others waiting): after each has taken its
  lock, after process 0 has cleared the directory (``--overwrite``), after each has
  checked the manifest and compiled; then process 0 writes the manifest, and after a
  barrier every process checks it against its own spec and model fingerprint (a host
  with other perfmodel code stops the run). A last meeting after the chunks tells
  every process that the sweep is complete. The meetings use no device collective
  (``multihost_utils.sync_global_devices`` is one: on CPU its gloo context gives up
  when processes arrive more than 30 s apart, as they do after chunks of uneven cost).

Restarting all processes after any of them died resumes: finished chunks (checked by
their SHA-256) are skipped, the rest computed; a different ``P`` also resumes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import re

import jax
from jax._src import distributed as jax_distributed

from perfmodel.errors import InputError, PerfmodelError

#: Largest process count accepted (a sanity bound; JAX has no documented limit).
MAX_PROCESSES = 1 << 20
#: Characters of an error message shared with the other processes.
_MSG_CHARS = 400
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """How this process joins a multi-process sweep.

    All of ``coordinator``, ``num_processes`` and ``process_id`` ``None``: JAX detects
    the cluster (SLURM, Open MPI, TPU pods, ...). Otherwise all three are given:
    ``coordinator`` is ``"HOST:PORT"`` of process 0 (the coordination service listens
    there), ``num_processes`` the number of processes ``P`` and ``process_id`` this
    process's index in ``[0, P)``.
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    #: how long to wait for all processes to join, s
    initialization_timeout_s: int = 300
    #: a process silent for this long counts as dead and stops the others, s
    heartbeat_timeout_s: int = 100


@dataclasses.dataclass(frozen=True)
class Processes:
    """This process's place in a sweep: ``index`` of ``count``; ``collective`` when the
    processes are joined by ``jax.distributed`` (they agree and meet at barriers);
    without it (one process, or indices passed by hand) each process runs alone."""

    index: int = 0
    count: int = 1
    collective: bool = False


def parse_coordinator(value: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[v6addr]:PORT"`` for IPv6) -> ``(host, port)``; an
    :class:`InputError` naming the value otherwise."""
    allowed = "HOST:PORT with a host name or IP address and a port in [1, 65535]"
    if not isinstance(value, str):
        raise InputError("--coordinator", value, allowed)
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", value.strip())
    if m is None:
        raise InputError("--coordinator", value, allowed)
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if m.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError("--coordinator", value, allowed) from None
    elif not _HOSTNAME.fullmatch(host):
        raise InputError("--coordinator", value, allowed)
    if not 1 <= int(port) <= 65535:
        raise InputError("--coordinator", value, allowed)
    return host, int(port)


def _count(v: object, field: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InputError(field, v, f"an integer in [{lo}, {hi}]")
    return v


def check_cluster(c: Cluster) -> Cluster:
    """``c`` if its fields are consistent: none of the three set (auto-detection) or
    all of them, with ``0 <= process_id < num_processes``."""
    given = [c.coordinator is not None, c.num_processes is not None, c.process_id is not None]
    if any(given) and not all(given):
        missing = [
            n for n, g in zip(("--coordinator", "--num-processes", "--process-id"), given) if not g
        ]
        raise InputError(
            f"{', '.join(missing)} missing: --coordinator, --num-processes and "
            "--process-id go together (or pass none of them to let JAX detect the cluster)"
        )
    if all(given):
        assert c.coordinator is not None
        parse_coordinator(c.coordinator)
        n = _count(c.num_processes, "--num-processes", 1, MAX_PROCESSES)
        _count(c.process_id, "--process-id", 0, MAX_PROCESSES)
        if not 0 <= int(c.process_id or 0) < n:
            raise InputError("--process-id", c.process_id, f"in [0, {n - 1}] (--num-processes {n})")
    _count(c.initialization_timeout_s, "initialization_timeout_s", 1, 86_400)
    _count(c.heartbeat_timeout_s, "heartbeat_timeout_s", 1, 86_400)
    return c


def initialize(c: Cluster | None = None) -> Processes:
    """Join the multi-process run (``jax.distributed.initialize``) unless this process
    already has; returns this process's :class:`Processes` (collective)."""
    c = check_cluster(c if c is not None else Cluster())
    if not jax.distributed.is_initialized():
        try:
            jax.distributed.initialize(
                c.coordinator,
                c.num_processes,
                c.process_id,
                initialization_timeout=c.initialization_timeout_s,
                heartbeat_timeout_seconds=c.heartbeat_timeout_s,
            )
        except (RuntimeError, ValueError) as e:  # no cluster found, coordinator unreachable
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            where = c.coordinator or "auto-detected"
            raise InputError(
                f"--distributed: jax.distributed.initialize (coordinator {where}) failed: {first}"
            ) from None
    elif c.num_processes is not None and jax.process_count() != c.num_processes:
        raise InputError(
            "--num-processes",
            c.num_processes,
            f"{jax.process_count()}, the size of the jax.distributed run already joined",
        )
    return Processes(jax.process_index(), jax.process_count(), True)


def current(index: int | None = None, count: int | None = None) -> Processes:
    """This process's :class:`Processes`: the given ``index``/``count`` (processes that
    each run alone, on their share of the chunks), or, when ``jax.distributed`` is
    initialized, its process index and count (collective when more than one)."""
    if index is None and count is None and jax.distributed.is_initialized():
        return Processes(jax.process_index(), jax.process_count(), jax.process_count() > 1)
    i = jax.process_index() if index is None else index
    n = jax.process_count() if count is None else count
    _count(n, "process_count", 1, MAX_PROCESSES)
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
        raise InputError(f"process_index = {i!r} must be in [0, {n})")
    return Processes(i, n, False)


def process_chunks(n_chunks: int, procs: Processes) -> list[int]:
    """The chunks process ``procs.index`` computes: ``c % count == index`` (round robin,
    so every process has work early and a killed process leaves its chunks spread)."""
    return list(range(procs.index, n_chunks, procs.count))


#: How long a process waits at a meeting for the others, s: the slowest process may still
#: be computing its chunks (a dead one is noticed sooner, by JAX's heartbeat).
MEETING_TIMEOUT_S = 7 * 86_400
_MEETINGS = itertools.count()  # every process meets the same number of times, in order


def _client():
    """The coordination-service client of ``jax.distributed`` (as JAX's own
    ``jax.experimental.array_serialization`` uses for its barriers)."""
    client = jax_distributed.global_state.client
    if client is None:
        raise RuntimeError("jax.distributed is not initialized")
    return client


def agree(procs: Processes, err: BaseException | None, what: str) -> None:
    """Meet the other processes: raise ``err`` (this process's error), or the first
    other process's error, or return when none failed. Without ``procs.collective``
    this only raises ``err``.

    Every process calls it at the same points, with the error it met there (``None``
    when none), so one process's error stops all of them at once: the one that failed
    raises its own exception; the others raise the same kind (:class:`InputError` for
    a user error, else ``RuntimeError``) with its message, naming the process. The
    meeting is a barrier of the coordination service (``wait_at_barrier``) after each
    process has put its status under a key of its own: no device collective, so the
    processes may arrive hours apart (a device all-gather on CPU gives up after 30 s).
    """
    if procs.collective:
        client = _client()
        key = f"perfmodel.sweep/{next(_MEETINGS)}"
        kind = "ok" if err is None else ("input" if isinstance(err, PerfmodelError) else "bug")
        msg = str(err or "").replace("\n", " ")[:_MSG_CHARS]
        client.key_value_set(f"{key}/status/{procs.index}", f"{kind}:{msg}")
        client.wait_at_barrier(f"{key}/barrier", MEETING_TIMEOUT_S * 1000)
        if err is None:
            status = dict(client.key_value_dir_get(f"{key}/status/"))
            for k in range(procs.count):
                kind_k, _, msg_k = _status(status, f"{key}/status/{k}").partition(":")
                if kind_k == "input":
                    raise InputError(f"process {k} of {procs.count} ({what}): {msg_k}")
                if kind_k != "ok":
                    raise RuntimeError(f"process {k} of {procs.count} failed ({what}): {msg_k}")
    if err is not None:
        raise err


def _status(entries: dict[str, str], key: str) -> str:
    """A process's status word (the directory listing may name keys with or without
    the leading path)."""
    if key in entries:
        return entries[key]
    short = key.rsplit("/", 1)[-1]
    for k, v in entries.items():
        if k.rsplit("/", 1)[-1] == short:
            return v
    return "bug:its status is missing at the meeting"


def barrier(procs: Processes, name: str) -> None:
    """Wait until every process reaches ``name``; nothing without ``procs.collective``."""
    agree(procs, None, name)
