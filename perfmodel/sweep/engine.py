"""Batch what-if runs: sample uncertain inputs, evaluate with jit+vmap, shard across
devices and processes, stream resumable results to Parquet (:func:`run_sweep`).

A sweep is ``(model, params, samples, seed)``; the pieces live in one module each:

* :mod:`perfmodel.sweep.params`: the uncertain inputs and how sample ``i`` draws them
  (a function of ``(seed, i)`` only);
* :mod:`perfmodel.sweep.spec`: models (:class:`Model`, the registry :data:`MODELS`)
  and validated specs (:class:`SweepSpec`, :func:`load_spec`);
* :mod:`perfmodel.sweep.chunks`: the compiled, device-sharded function of one chunk;
* :mod:`perfmodel.sweep.store`: the directory on disk (chunks with SHA-256, manifest,
  lock) and reading results back;
* :mod:`perfmodel.sweep.distributed`: several processes on ``jax.distributed``;
* :mod:`perfmodel.sweep.results`: summaries and plots;
* this module: the run loop.

Built-in models (:data:`MODELS`): ``fleet`` (the fleet planner's relaxed optimum per
scenario variant: prices, delivery delays, power ramps), ``chips`` (per-sample chip
specs drawn from the catalog's low/best/high ranges -> training step time and
H100-equivalents with a roofline step model) and ``toy`` (identity, for tests).

Execution (:func:`run_sweep`):

* the samples are cut into chunks of ``chunk_size``; chunk ``c`` holds samples
  ``c*K .. c*K+K-1`` and is evaluated by one compiled call sharded over the local devices
  (:mod:`perfmodel.sweep.chunks`). The results of traced models are identical for any
  order in which chunks run and any process count. (The fleet model's host-side simplex
  returns one optimal vertex; where an LP has tied optima, e.g. how a chip's units split
  between two sites, a different chunk size can return another one with the same
  objective.);
* chunk ``c`` is written to ``OUT/chunk-{c:06d}.parquet`` atomically, next to
  ``OUT/manifest.json`` (:mod:`perfmodel.sweep.store`). A sweep killed at any moment
  (SIGINT, SIGKILL, power loss) and restarted with the same command skips the chunks
  on disk and computes the rest: the final results are bit-for-bit those of an
  uninterrupted run. A different spec, seed, sample count or chunk size in an existing
  directory is an error unless ``overwrite=True`` (CLI ``--overwrite``);
* while chunk ``c`` is written to disk, chunk ``c + 1`` is already running on the
  devices (JAX's asynchronous dispatch);
* a model may instead evaluate on the host (``Model.host``, e.g. the fleet model's
  ``batching = "simplex"``, whose batched solver is not traceable): the chunk's inputs
  are drawn the same way, then the model's function is called with NumPy arrays;
  chunk files, resumption, progress and the manifest are the same.

Several processes (``distributed=True`` or a :class:`Cluster`; CLI ``--distributed``):
every process runs the same command into a shared output directory; process ``p`` of
``P`` computes the chunks ``c % P == p`` on its local devices, process 0 writes the
manifest, and the rows are those of a one-process run (:mod:`perfmodel.sweep.distributed`).

Example::

    >>> from perfmodel.sweep import load_spec, run_sweep, summarize
    >>> spec = load_spec(None)                # the built-in default sweep
    >>> run_sweep(spec, "out/sweep", samples=1000, seed=0)   # doctest: +SKIP
    >>> summarize("out/sweep")["metrics"]["h100e"]["p50"]     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jax
import numpy as np
import pyarrow as pa

from perfmodel.errors import InputError, path_error
from perfmodel.sweep.chunks import compiled_chunk_fn as compiled_chunk_fn
from perfmodel.sweep.chunks import host_chunk_fn as host_chunk_fn
from perfmodel.sweep.chunks import make_chunk_fn as make_chunk_fn
from perfmodel.sweep.chunks import padded_indices
from perfmodel.sweep.distributed import Cluster as Cluster
from perfmodel.sweep.distributed import Processes as Processes
from perfmodel.sweep.distributed import agree, barrier, current, initialize, process_chunks
from perfmodel.sweep.params import DISTRIBUTIONS as DISTRIBUTIONS
from perfmodel.sweep.params import MAX_SAMPLES as MAX_SAMPLES
from perfmodel.sweep.params import Param as Param
from perfmodel.sweep.params import grid_size as grid_size
from perfmodel.sweep.params import parse_param as parse_param
from perfmodel.sweep.params import sample_params as sample_params
from perfmodel.sweep.params import triangular as triangular
from perfmodel.sweep.results import plot_summary as plot_summary
from perfmodel.sweep.results import summarize as summarize
from perfmodel.sweep.spec import MODELS as MODELS
from perfmodel.sweep.spec import Model as Model
from perfmodel.sweep.spec import SweepSpec as SweepSpec
from perfmodel.sweep.spec import _int_field
from perfmodel.sweep.spec import builtin_spec_paths as builtin_spec_paths
from perfmodel.sweep.spec import fleet_available as fleet_available
from perfmodel.sweep.spec import load_spec as load_spec
from perfmodel.sweep.spec import model_available as model_available
from perfmodel.sweep.spec import parse_spec as parse_spec
from perfmodel.sweep.spec import register_model as register_model
from perfmodel.sweep.store import MANIFEST as MANIFEST
from perfmodel.sweep.store import (
    check_manifest,
    clear_sweep,
    new_manifest,
    write_chunk,
    write_manifest,
)
from perfmodel.sweep.store import check_out_dir as check_out_dir
from perfmodel.sweep.store import checksum_path as checksum_path
from perfmodel.sweep.store import chunk_path as chunk_path
from perfmodel.sweep.store import chunk_state as chunk_state
from perfmodel.sweep.store import load_results as load_results
from perfmodel.sweep.store import model_fingerprint as model_fingerprint
from perfmodel.sweep.store import read_manifest as read_manifest
from perfmodel.sweep.store import sweep_lock as sweep_lock

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """What :func:`run_sweep` did (in this process)."""

    out: str
    samples: int
    chunks_total: int
    chunks_computed: int
    chunks_skipped: int
    rows_computed: int
    wall_s: float
    compile_s: float
    devices: int
    complete: bool
    #: chunks found on disk that failed their checksum (corrupted or truncated) and were
    #: computed again
    chunks_recomputed_bad: tuple[int, ...] = ()
    #: this process's index and the process count (``0`` and ``1`` for one process);
    #: the chunk counts above are this process's share
    process_index: int = 0
    process_count: int = 1

    @property
    def rows_per_s(self) -> float | None:
        """Rows per second of evaluation (``None`` when nothing was computed)."""
        t = self.wall_s - self.compile_s
        return self.rows_computed / t if t > 0 and self.rows_computed else None

    def to_dict(self) -> dict[str, Any]:
        """The fields and ``rows_per_s``, as strict JSON types."""
        d = dataclasses.asdict(self)
        d["chunks_recomputed_bad"] = list(self.chunks_recomputed_bad)
        d["rows_per_s"] = self.rows_per_s
        return d


def run_sweep(
    spec: SweepSpec | str | Path | None,
    out: str | Path,
    samples: int | None = None,
    seed: int | None = None,
    *,
    chunk_size: int | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    devices: Sequence[Any] | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    max_chunks: int | None = None,
    distributed: bool | Cluster = False,
) -> SweepRun:
    """Run (or resume) a sweep, writing ``out/chunk-*.parquet`` and ``out/manifest.json``.

    Args:
      spec: a :class:`SweepSpec`, a spec file path or built-in name, or ``None`` for the
        default sweep.
      out: output directory (created; shared by all processes of a distributed run).
      samples, seed, chunk_size: override the spec's values.
      overwrite: delete whatever sweep ``out`` holds and start over (without it, a
        matching sweep is resumed and a different one is an error).
      progress: show a tqdm bar (default: only when stderr is a terminal and ``CI`` is
        unset).
      devices: devices to shard the sample axis over (default ``jax.local_devices()``).
      process_index, process_count: this process's share of chunks, for processes that
        each run alone (no ``jax.distributed``); default: from ``jax.distributed`` when it
        is initialized, else the whole sweep.
      max_chunks: stop after computing this many chunks (for tests and smoke runs).
      distributed: join a multi-process run first (``jax.distributed.initialize``):
        ``True`` lets JAX detect the cluster (SLURM, Open MPI, TPU pods), a
        :class:`Cluster` names the coordinator, process count and this process's id.
        ``jax.distributed.initialize`` must come before any JAX computation, so pass
        the spec as a path or name here, or call
        :func:`perfmodel.sweep.distributed.initialize` before building a
        :class:`SweepSpec`.

    Returns:
      :class:`SweepRun` (this process's counts, wall and compile time, whether all
      chunks exist).
    """
    procs = None
    if distributed is not False:  # first: building a model runs JAX code
        if process_index is not None or process_count is not None:
            raise InputError(
                "process_index/process_count come from jax.distributed when distributed "
                "is set; pass one or the other"
            )
        procs = initialize(distributed if isinstance(distributed, Cluster) else None)
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    if samples is not None:
        spec = spec.replace(samples=_int_field(samples, "samples", 1, MAX_SAMPLES))
    if seed is not None:
        spec = spec.replace(seed=_int_field(seed, "seed", 0, 2**31 - 1))
    if chunk_size is not None:
        spec = spec.replace(chunk_size=_int_field(chunk_size, "chunk_size", 1, 2**24))
    if max_chunks is not None:
        _int_field(max_chunks, "max_chunks", 0, 2**31)
    out = check_out_dir(out)
    if procs is None:
        procs = current(process_index, process_count)
    devices = list(devices if devices is not None else jax.local_devices())
    t0 = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise path_error(out, e, "directory") from e
    with contextlib.ExitStack() as stack:
        tag = f"p{procs.index}"
        agree(procs, _attempt(lambda: stack.enter_context(sweep_lock(out, tag)))[1], "lock")
        return _run(spec, out, procs, devices, t0, overwrite, progress, max_chunks)
    raise AssertionError("unreachable")  # pragma: no cover - pyright: the with returns


def _attempt(fn: Callable[[], T]) -> tuple[T | None, Exception | None]:
    """``(fn(), None)``, or ``(None, error)``: an error is shared with the other
    processes (:func:`agree`) before it is raised."""
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - re-raised by agree(), in every process
        return None, e


@dataclasses.dataclass
class _Plan:
    """What a process computes: its chunks, their state on disk and the compiled
    function (set when a chunk is left to compute)."""

    man: dict[str, Any] | None
    mine: list[int]
    columns: list[str]
    fn: Any = None
    sharding: Any = None
    compile_s: float = 0.0
    first: tuple[int, dict[str, np.ndarray]] | None = None  # a host model's first chunk
    states: dict[int, str] | None = None  # per chunk: ok, missing or bad (checksum)


def _rows_in(spec: SweepSpec, c: int) -> int:
    return min(spec.chunk_size, spec.samples - c * spec.chunk_size)


def _plan(spec: SweepSpec, out: Path, procs: Processes, devices: list[Any], width: int) -> _Plan:
    """Check the manifest, find this process's chunks left to compute and compile (or,
    for a host model, compute the first of them: it tells the columns)."""
    man = check_manifest(out, spec)
    if man is None and any(out.glob("chunk-*.parquet")):
        raise InputError(
            f"--out {str(out)!r} holds chunk files but no {MANIFEST}: they cannot be told "
            "apart from another sweep's; pass --overwrite to delete them"
        )
    n_chunks = -(-spec.samples // spec.chunk_size)
    mine = process_chunks(n_chunks, procs)
    todo, states = mine, None
    if man is not None:  # resuming: skip the compilation when every chunk is on disk
        cols = man.get("columns")
        states = {c: chunk_state(chunk_path(out, c), _rows_in(spec, c), cols) for c in mine}
        todo = [c for c in mine if states[c] != "ok"]
        if not todo:
            return _Plan(man, mine, list(man["columns"]), states=states)
    if not spec.model.host:
        # Compile (and learn the columns) for the chunk shape; every chunk has this shape.
        fn, sharding, columns, compile_s = compiled_chunk_fn(spec, devices, width)
        return _Plan(man, mine, columns, fn, sharding, compile_s, states=states)
    # Nothing to compile ahead (compile_s stays 0: the model's own compiles happen inside
    # its calls); the first chunk to compute tells the columns.
    fn = host_chunk_fn(spec, devices)
    c0 = todo[0] if todo else 0
    start0 = c0 * spec.chunk_size
    first = (c0, fn(padded_indices(start0, start0 + _rows_in(spec, c0), width)))
    return _Plan(man, mine, ["sample", *first[1].keys()], fn, first=first, states=states)


def _settle_manifest(spec: SweepSpec, out: Path, procs: Processes, plan: _Plan) -> dict:
    """The manifest every process works to: process 0 (or a process running alone)
    writes it when it is new; after the barrier every process checks it."""
    n_chunks = -(-spec.samples // spec.chunk_size)
    man = plan.man
    if man is None and (procs.index == 0 or not procs.collective):
        man = new_manifest(spec, n_chunks, plan.columns)
        write_manifest(out, man, f"p{procs.index}")
    barrier(procs, "manifest")
    if procs.collective:  # the others read process 0's (and check their own fingerprint)
        man = check_manifest(out, spec)
        if man is None:
            raise InputError(
                f"--out {str(out)!r}: process 0 wrote {MANIFEST} but this process does not "
                "see it; the output directory must be one file system shared by all hosts"
            )
    assert man is not None
    if man.get("columns") != plan.columns:
        raise InputError(
            f"{out / MANIFEST}: columns differ from this build's model outputs; "
            "the code changed since the sweep started: use --overwrite"
        )
    return man


def _run(
    spec: SweepSpec,
    out: Path,
    procs: Processes,
    devices: list[Any],
    t0: float,
    overwrite: bool,
    progress: bool | None,
    max_chunks: int | None,
) -> SweepRun:
    """:func:`run_sweep` once ``out`` is checked and every process holds its lock."""
    tag = f"p{procs.index}"
    for f in out.glob(f".chunk-*.tmp-{tag}-*"):  # debris of this process's killed writer
        f.unlink(missing_ok=True)
    if overwrite and procs.index == 0:
        clear_sweep(out)
    agree(procs, None, "overwrite")  # nobody reads the directory before it is cleared
    n_dev = len(devices)
    width = -(-spec.chunk_size // n_dev) * n_dev
    plan, err = _attempt(lambda: _plan(spec, out, procs, devices, width))
    agree(procs, err, "manifest and compilation")
    assert plan is not None
    man, err = _attempt(lambda: _settle_manifest(spec, out, procs, plan))
    agree(procs, err, "manifest")
    assert man is not None
    res, err = _attempt(lambda: _compute(spec, out, procs, plan, man, width, progress, max_chunks))
    agree(procs, err, "chunks")  # the last meeting: every process has finished its chunks
    assert res is not None
    todo, rows, bad = res
    n_chunks = man["n_chunks"]
    complete = all(chunk_path(out, c).exists() for c in range(n_chunks))
    return SweepRun(
        str(out),
        spec.samples,
        n_chunks,
        len(todo),
        len(plan.mine) - len(todo),
        rows,
        time.perf_counter() - t0,
        plan.compile_s,
        n_dev,
        complete,
        tuple(bad),
        procs.index,
        procs.count,
    )


def _compute(
    spec: SweepSpec,
    out: Path,
    procs: Processes,
    plan: _Plan,
    man: dict[str, Any],
    width: int,
    progress: bool | None,
    max_chunks: int | None,
) -> tuple[list[int], int, list[int]]:
    """Compute and write this process's chunks that are not on disk; returns (the
    chunks computed, rows computed, the chunks that failed their checksum)."""
    tag = f"p{procs.index}"
    columns = plan.columns
    states = plan.states
    if states is None or man.get("columns") != columns:
        states = {c: chunk_state(chunk_path(out, c), _rows_in(spec, c), columns) for c in plan.mine}
    todo = [c for c in plan.mine if states[c] != "ok"]
    bad = [c for c in plan.mine if states[c] == "bad"]  # recomputed below, and reported
    if max_chunks is not None:
        todo = todo[:max_chunks]
    mine_rows = sum(_rows_in(spec, c) for c in plan.mine)
    bar = _progress(mine_rows, mine_rows - sum(_rows_in(spec, c) for c in todo), progress)
    host = spec.model.host

    def launch(c: int):
        assert plan.fn is not None  # set by _plan whenever a chunk is left to compute
        start = c * spec.chunk_size
        idx = padded_indices(start, start + _rows_in(spec, c), width)
        if host:  # runs now, on the host (no asynchronous dispatch to overlap with)
            if plan.first is not None and plan.first[0] == c:
                return plan.first[1]
            return plan.fn(idx)
        return plan.fn(jax.device_put(idx, plan.sharding))

    rows = 0
    try:
        pending = launch(todo[0]) if todo and not host else None
        for j, c in enumerate(todo):
            if host:
                res = launch(c)
            else:
                res = pending
                pending = launch(todo[j + 1]) if j + 1 < len(todo) else None  # overlap
            assert res is not None  # launched for every chunk in todo
            n = _rows_in(spec, c)
            start = c * spec.chunk_size
            data = {"sample": np.arange(start, start + n, dtype=np.int64)}
            for k in columns[1:]:
                data[k] = np.asarray(res[k])[:n]
            write_chunk(chunk_path(out, c), pa.table(data), tag)
            rows += n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    return todo, rows, bad


def _progress(total: int, initial: int, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty() and not os.environ.get("CI")
    if not enabled:
        return None
    from tqdm.auto import tqdm  # only with a terminal (tqdm.auto probes for Jupyter)

    return tqdm(
        total=total,
        initial=initial,
        unit="rows",
        unit_scale=True,
        dynamic_ncols=True,
        desc="sweep",
        smoothing=0.1,
    )
