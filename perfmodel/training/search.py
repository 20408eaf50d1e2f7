"""Layout search: the whole grid of layouts in one jit + vmap call."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel import workloads as wl
from perfmodel.hardware import PRECISION_INDEX, Chip, load_catalog
from perfmodel.programs import stored
from perfmodel.training.step import _jit_step, get_network, step_time
from perfmodel.training.types import (
    LAYOUT_FIELDS,
    RECOMPUTE,
    Layout,
    StepResult,
    TrainEfficiency,
    _f,
    default_efficiency,
    make_layout,
)
from perfmodel.workloads import Workload

# --------------------------------------------------------------------------------------
# Layout search: the whole grid in one jit + vmap call
# --------------------------------------------------------------------------------------

TP_CHOICES = (1, 2, 4, 8, 16, 32, 64)
CP_CHOICES = (1, 2, 4, 8, 16)
MB_CHOICES = (1, 2, 4, 8, 16)
VPP_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16)
ZERO_CHOICES = (0, 1, 2, 3)


#: Recompute modes the search tries: ``block`` with every layer recomputed is
#: ``full``, so ``full`` itself is not searched twice.
SEARCHED_RECOMPUTE = ("none", "selective", "block")
#: Their :data:`~perfmodel.training.types.RECOMPUTE` codes.
RECOMPUTE_CHOICES = tuple(RECOMPUTE.index(r) for r in SEARCHED_RECOMPUTE)


def _divisors(n: int) -> list[int]:
    small = [i for i in range(1, int(math.isqrt(n)) + 1) if n % i == 0]
    return sorted(set(small + [n // i for i in small]))


def layout_grid(
    w: Workload,
    n_chips: int,
    max_tp: int = 64,
    *,
    recompute: tuple[str, ...] = SEARCHED_RECOMPUTE,
    sp: tuple[int, ...] = (0, 1),
    zero: tuple[int, ...] = ZERO_CHOICES,
    max_cp: int = 16,
    max_ep: int = 256,
) -> dict[str, np.ndarray]:
    """Every layout of ``w`` on ``n_chips`` chips as numpy columns (one row a layout).

    tp in {1..64} (powers of two dividing the heads and N, at most ``max_tp``: the
    search keeps TP inside the scale-up domain, as practical frameworks do), cp in {1..16} (dividing the
    sequence), pp any divisor of N/(tp cp) up to the layer count, dp the rest (dividing
    the global batch), micro-batch in {1..16} (dividing B/dp), vpp in {1,2,3,4,6,8,12,16}
    (vpp > 1 only with pp > 1, L divisible by pp vpp and at least pp micro-batches),
    sp on/off (tp > 1), recompute none/selective/block (block: the fewest recomputed
    layers that fit; every layer is full), ZeRO 0-3 (> 0 only with dp > 1).
    ``recompute``, ``sp``, ``zero`` and ``max_cp`` restrict the features searched (e.g.
    to what a 2021 software stack had).
    """
    for r in recompute:
        if r not in RECOMPUTE:
            raise ValueError(f"recompute mode {r!r} must be one of {RECOMPUTE}")
    rc_codes = tuple(RECOMPUTE.index(r) for r in recompute)
    base = base_layouts(w, n_chips, max_tp, max_cp)
    ext = []
    for sp_on, rc, z in itertools.product(sp, rc_codes, zero):
        keep = np.ones(len(base), bool)
        if sp_on:
            keep &= base[:, 0] > 1
        if z:
            keep &= base[:, 2] > 1
        b = base[keep]
        ext.append(np.column_stack([b, np.full((len(b), 3), (sp_on, rc, z), np.float64)]))
    g = np.concatenate(ext) if ext else np.zeros((0, 9))
    g = _with_ep(g, int(float(w.experts)), max_ep)
    # recompute_layers: the fewest that fit; offload_layers: none
    g = np.column_stack([g, np.zeros((len(g), 2))])
    return {k: g[:, i] for i, k in enumerate(LAYOUT_FIELDS)}


def base_layouts(w: Workload, n_chips: int, max_tp: int = 64, max_cp: int = 16) -> np.ndarray:
    """The (tp, pp, dp, cp, mb, vpp) rows of :func:`layout_grid` (before sp, recompute,
    ZeRO and ep are crossed with them), as float64 ``[rows, 6]``."""
    n = int(n_chips)
    heads, layers = int(w.heads), int(w.layers)
    gbs, seq = int(w.global_batch), int(w.seq)
    rows = []
    for tp in TP_CHOICES:
        if n % tp or heads % tp or tp > max_tp:
            continue
        for cp in CP_CHOICES:
            if cp > max_cp or (n // tp) % cp or seq % cp or (cp > 1 and seq // cp < 512):
                continue
            rest = n // (tp * cp)
            for pp in _divisors(rest):
                if pp > layers:
                    break
                dp = rest // pp
                if gbs % dp:
                    continue
                for mb in MB_CHOICES:
                    if (gbs // dp) % mb:
                        continue
                    m = gbs // (dp * mb)
                    for v in VPP_CHOICES:
                        if v > 1 and (pp == 1 or layers % (pp * v) or m < pp):
                            continue
                        rows.append((tp, pp, dp, cp, mb, v))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


EP_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _with_ep(g: np.ndarray, experts: int, max_ep: int) -> np.ndarray:
    """Append the expert-parallel column: 1 for a dense model; for an MoE model every
    power of two up to ``max_ep`` dividing the experts and ``dp x cp`` (experts sliced
    over tp), or ``tp x dp x cp`` (EP across the TP ranks, expert tensor parallelism 1)."""
    if experts <= 0:
        return np.column_stack([g, np.ones(len(g))])
    dpcp = g[:, 2] * g[:, 3]
    out = []
    for ep in EP_CHOICES:
        if ep > max_ep or experts % ep:
            continue
        keep = (np.mod(dpcp, ep) == 0) | (np.mod(g[:, 0] * dpcp, ep) == 0)
        out.append(np.column_stack([g[keep], np.full(int(keep.sum()), float(ep))]))
    return np.concatenate(out) if out else np.zeros((0, g.shape[1] + 1))


def _max_tp(net) -> int:
    return max(1, int(np.floor(float(np.max(np.asarray(net.domain_size))))))


def _bucket(k: int) -> int:
    """Padded grid size: a power of two >= 1024 (few distinct compiled shapes)."""
    return max(1024, 1 << max(0, (k - 1)).bit_length())


#: Layouts per vmapped chunk: large grids are evaluated as a ``lax.map`` over chunks of
#: this many rows, so the intermediates stay cache-sized (2-5x faster than one huge vmap
#: on CPU).
GRID_CHUNK = 16384


def per_layout(w, chip, net, lays, ns, eff) -> StepResult:
    """``step_time`` of every layout row (vmapped over the layout and the chip count)."""
    return jax.vmap(step_time, in_axes=(None, None, None, 0, 0, None))(w, chip, net, lays, ns, eff)


def fit_units(r: StepResult):
    """Work units/s of each layout, 0 where it does not fit or is invalid."""
    return jnp.where(r.fits & r.valid, r.units_per_s, 0.0)


def _chunked(fn, lays, ns):
    """``fn(lays, ns)`` (per layout row), as a ``lax.map`` over blocks of
    :data:`GRID_CHUNK` rows when the grid is a multiple of it (cache-sized
    intermediates); every output keeps one row per layout."""
    k = ns.shape[0]
    if k <= GRID_CHUNK or k % GRID_CHUNK:
        return fn(lays, ns)
    split = lambda x: x.reshape((k // GRID_CHUNK, GRID_CHUNK) + x.shape[1:])  # noqa: E731
    out = jax.lax.map(lambda a: fn(*a), (jax.tree_util.tree_map(split, lays), split(ns)))
    return jax.tree_util.tree_map(lambda x: x.reshape((k,) + x.shape[2:]), out)


@stored
def _eval_grid(w, chip, net, lays, ns, eff):
    """``step_time`` of every layout row (vmapped; one compiled call per shape)."""
    return _chunked(lambda lays, ns: per_layout(w, chip, net, lays, ns, eff), lays, ns)


def _fit_columns(w, chip, net, lays, ns, eff):
    """``(units/s with 0 where a layout does not fit or is invalid, memory (byte),
    fits-and-valid)`` of every layout row: the model computes only these three columns
    (XLA drops the rest of each layout's breakdown)."""

    def cols(lays, ns):
        r = per_layout(w, chip, net, lays, ns, eff)
        return fit_units(r), r.memory_bytes, r.fits & r.valid

    return _chunked(cols, lays, ns)


_grid_columns = stored(_fit_columns, f"{__name__}._grid_columns")


@stored
def _search_grid(w, chip, net, lays, ns, eff):
    """The best-layout search in one program: :func:`_fit_columns` of every row, and the
    whole :class:`StepResult` of the fastest row (the model on that one layout)."""
    units, mem, ok = _fit_columns(w, chip, net, lays, ns, eff)
    i = jnp.argmax(units)
    row = step_time(w, chip, net, jax.tree_util.tree_map(lambda x: x[i], lays), ns[i], eff)
    return units, mem, ok, row


def _pad_grid(cols: dict[str, np.ndarray], ns: np.ndarray):
    k = len(ns)
    size = _bucket(k)
    pad = size - k
    lay = Layout(**{f: jnp.asarray(np.concatenate([c, np.ones(pad)])) for f, c in cols.items()})
    n = jnp.asarray(np.concatenate([ns, np.zeros(pad)]))  # n = 0 never matches: invalid
    return lay, n


def evaluate_grid(
    w: Workload,
    chip: Chip,
    net,
    cols: dict[str, np.ndarray],
    ns: np.ndarray,
    eff: TrainEfficiency | None = None,
):
    """Throughput (units/s, 0 where the layout does not fit or is invalid), memory
    (byte) and the fit flag of every layout row, in one compiled call (numpy out)."""
    w, chip = dataclasses.replace(w, name=""), dataclasses.replace(chip, name="")
    lay, n = _pad_grid(cols, np.asarray(ns, np.float64))
    out = _grid_columns(w, chip, net, lay, n, eff or default_efficiency())
    k = len(ns)
    return tuple(np.asarray(o)[:k] for o in out)


@dataclasses.dataclass
class TrainResult:
    """The result of :func:`best_layout` or :func:`evaluate_layout` (SI units)."""

    workload: str
    chip: str
    n_chips: int
    precision: str
    unit: str
    step_time_s: float
    tokens_per_s: float
    samples_per_s: float
    mfu: float
    memory_per_device_bytes: float
    memory_capacity_bytes: float
    fits: bool
    layout: dict[str, Any]
    breakdown: dict[str, float]
    memory: dict[str, float]
    layouts_evaluated: int = 1
    layouts_fitting: int = 1
    search_time_s: float = 0.0
    compile_time_s: float = 0.0

    @property
    def units_per_s(self) -> float:
        return self.tokens_per_s if self.unit == "token" else self.samples_per_s

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _result(
    w: Workload,
    chip_key: str,
    chip: Chip,
    net,
    lay: Layout,
    n: int,
    eff: TrainEfficiency,
    step: StepResult | None = None,
    **extra,
) -> TrainResult:
    r = _jit_step(w, chip, net, lay, _f(n), eff) if step is None else step
    g = {k: float(getattr(r, k)) for k in r.__dataclass_fields__}
    units = g["units_per_s"]
    seq = float(w.seq)
    tokens = units if w.unit == "token" else units * seq
    samples = units / seq if w.unit == "token" else units
    bd = {
        k: g[k]
        for k in (
            "compute_s",
            "recompute_s",
            "offload_s",
            "bubble_s",
            "tp_comm_s",
            "cp_comm_s",
            "ep_comm_s",
            "pp_comm_s",
            "dp_comm_s",
            "optimizer_s",
            "overhead_s",
        )
    }
    mem = {
        k: g[k] for k in ("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
    }
    layout = lay.to_dict()
    if layout["recompute"] in ("full", "block"):
        # whole layers of each pipeline stage that recompute their forward
        layout["recompute_layers"] = int(
            round(g["recompute_share"] * float(w.layers) / layout["pp"])
        )
    return TrainResult(
        workload=w.name,
        chip=chip_key,
        n_chips=int(n),
        precision=w.precision,
        unit=w.unit,
        step_time_s=g["step_time_s"],
        tokens_per_s=tokens,
        samples_per_s=samples,
        mfu=g["mfu"],
        memory_per_device_bytes=g["memory_bytes"],
        memory_capacity_bytes=g["capacity_bytes"],
        fits=bool(g["fits"]),
        layout=layout,
        breakdown=bd,
        memory=mem,
        **extra,
    )


def _prepare(workload, chip_key, n_chips, precision, catalog, chip=None, global_batch=None):
    if isinstance(workload, str):
        workload = wl.get_workload(workload)
    if not isinstance(workload, Workload):
        raise ValueError(
            f"workload must be a preset name or a Workload, got {type(workload).__name__}"
        )
    w = workload.with_precision(precision).with_global_batch(global_batch)
    if w.precision == "int8":
        raise ValueError(
            f"precision 'int8' is for inference; training precisions: {wl.TRAIN_PRECISIONS}"
        )
    if (
        isinstance(n_chips, bool)
        or not isinstance(n_chips, (int, np.integer))
        or not 1 <= n_chips <= 10**7
    ):
        raise ValueError(f"n_chips = {n_chips!r} must be an integer in [1, 10000000]")
    cat = catalog or load_catalog()
    key = cat.resolve(chip_key)
    c = cat.chip(key) if chip is None else chip
    if w.precision == "fp4" and float(c.peak_flops_per_s[PRECISION_INDEX["fp4"]]) <= 0:
        raise ValueError(
            f"precision 'fp4' is not supported by chip '{key}' (it has no FP4 tensor rate); "
            "use fp8 or bf16"
        )
    return w, key, c, get_network(key, cat)


def best_layout(
    workload,
    chip_key: str,
    n_chips: int,
    *,
    precision: str | None = None,
    catalog=None,
    chip: Chip | None = None,
    global_batch: int | None = None,
    eff: TrainEfficiency | None = None,
    **features,
) -> TrainResult:
    """The fastest layout of ``workload`` on ``n_chips`` chips that fits in memory.

    Builds the whole :func:`layout_grid` and evaluates it in one ``jit(vmap)`` call.

    Args:
      workload: a preset name or a :class:`perfmodel.workloads.Workload`.
      chip_key: catalog chip key or alias (the network comes from the catalog).
      n_chips: chips in the job.
      precision: override the workload precision (bf16, fp16, fp8, ...).
      chip: override the catalog Chip pytree (e.g. a ``pick='low'`` spec).
      global_batch: override the workload's global batch (samples).
      eff: efficiency assumptions (default :func:`default_efficiency`).
      **features: restrictions of the grid passed to :func:`layout_grid`
        (``recompute``, ``sp``, ``zero``, ``max_cp``).

    Returns:
      :class:`TrainResult` with ``layouts_evaluated``, ``layouts_fitting`` and
      ``search_time_s`` (wall time of the evaluation, compilation excluded; the
      compilation is in ``compile_time_s``, 0 when cached).

    Raises:
      ValueError: bad arguments, or no layout fits (with the smallest memory need).
    """
    w, key, c, net = _prepare(workload, chip_key, n_chips, precision, catalog, chip, global_batch)
    eff = eff or default_efficiency()
    cols = layout_grid(w, n_chips, _max_tp(net), **features)
    k = len(cols["tp"])
    if k == 0:
        raise ValueError(
            f"no parallel layout of '{w.name}' divides {n_chips} chips "
            f"(global batch {int(w.global_batch)}, heads {int(w.heads)})"
        )
    lay, ns = _pad_grid(cols, np.full(k, float(n_chips)))
    wa, ca = dataclasses.replace(w, name=""), dataclasses.replace(c, name="")
    t0 = time.perf_counter()
    compiled = _search_grid.compile(wa, ca, net, lay, ns, eff)
    t1 = time.perf_counter()
    units, mem, ok, row = jax.block_until_ready(compiled(wa, ca, net, lay, ns, eff))
    t2 = time.perf_counter()
    units, mem, ok = (np.asarray(o)[:k] for o in (units, mem, ok))
    if not ok.any():
        i = int(np.argmin(mem))
        raise ValueError(
            f"no layout of '{w.name}' fits on {n_chips} x {key}: the smallest needs "
            f"{mem[i] / 1e9:.1f} GB per device, {float(c.mem_bytes[1] * eff.mem_usable) / 1e9:.1f} GB usable"
        )
    i = int(np.argmax(units))  # the row the program evaluated whole (the first maximum)
    best = Layout(**{f: _f(cols[f][i]) for f in LAYOUT_FIELDS})
    row = jax.tree_util.tree_map(np.asarray, row)
    return _result(
        w,
        key,
        c,
        net,
        best,
        n_chips,
        eff,
        step=row,
        layouts_evaluated=k,
        layouts_fitting=int(ok.sum()),
        search_time_s=t2 - t1,
        compile_time_s=t1 - t0,
    )


def evaluate_layout(
    workload,
    chip_key: str,
    n_chips: int,
    layout: Layout | dict,
    *,
    precision: str | None = None,
    catalog=None,
    chip: Chip | None = None,
    global_batch: int | None = None,
    eff: TrainEfficiency | None = None,
    require_fit: bool = True,
) -> TrainResult:
    """Step time of one given layout; ValueError if tp pp dp cp != n_chips, if the
    micro-batches do not divide the global batch, or (``require_fit``) if it does not
    fit in memory (the message gives memory needed vs available)."""
    w, key, c, net = _prepare(workload, chip_key, n_chips, precision, catalog, chip, global_batch)
    eff = eff or default_efficiency()
    lay = make_layout(**layout) if isinstance(layout, dict) else layout
    ld = lay.to_dict()
    prod = ld["tp"] * ld["pp"] * ld["dp"] * ld["cp"]
    if prod != n_chips:
        raise ValueError(
            f"layout tp*pp*dp*cp = {ld['tp']}*{ld['pp']}*{ld['dp']}*{ld['cp']} = {prod} "
            f"must equal the number of chips {n_chips}"
        )
    gbs = int(w.global_batch)
    if gbs % (ld["dp"] * ld["mb"]):
        raise ValueError(f"global batch {gbs} must be divisible by dp*mb = {ld['dp']}*{ld['mb']}")
    if int(w.heads) % ld["tp"]:
        raise ValueError(f"tp = {ld['tp']} must divide the number of heads {int(w.heads)}")
    lps = math.ceil(int(w.layers) / ld["pp"])
    for k in ("recompute_layers", "offload_layers"):
        if ld.get(k, 0) > lps:
            raise ValueError(
                f"layout field '{k}' = {ld[k]} must be in [0, {lps}] (the layers of one "
                "pipeline stage)"
            )
    experts = int(float(w.experts))
    if ld["ep"] > 1 and experts == 0:
        raise ValueError(
            f"layout field 'ep' = {ld['ep']} needs an MoE workload; {w.name} is dense (ep must be 1)"
        )
    if experts and experts % ld["ep"]:
        raise ValueError(
            f"layout field 'ep' = {ld['ep']} must divide the {experts} experts of {w.name}"
        )
    if ld.get("offload_layers", 0) and not float(c.host_bytes_per_s) > 0:
        raise ValueError(
            f"layout field 'offload_layers' = {ld['offload_layers']} needs a host link; chip "
            f"{key} lists no host_bytes_per_s_per_dir (offload_layers must be 0)"
        )
    res = _result(w, key, c, net, lay, n_chips, eff)
    if require_fit and not res.fits:
        raise ValueError(
            f"layout {ld} does not fit: needs {res.memory_per_device_bytes / 1e9:.1f} GB per "
            f"device, {res.memory_capacity_bytes / 1e9:.1f} GB usable on {key} "
            f"(weights {res.memory['weights_bytes'] / 1e9:.1f}, grads {res.memory['grads_bytes'] / 1e9:.1f}, "
            f"optimizer {res.memory['optimizer_bytes'] / 1e9:.1f}, activations "
            f"{res.memory['activations_bytes'] / 1e9:.1f} GB)"
        )
    return res


def throughput_curve(
    workload,
    chip_key: str,
    counts,
    *,
    precision: str | None = None,
    chip: Chip | None = None,
    catalog=None,
    eff: TrainEfficiency | None = None,
) -> np.ndarray:
    """Best-layout throughput (work units/s: tokens/s, or samples/s for the video model)
    at each chip count in ``counts``; 0 where no layout fits. All counts' grids are
    concatenated and evaluated in one compiled call."""
    counts = [int(x) for x in np.atleast_1d(np.asarray(counts))]
    if not counts:
        return np.zeros(0)
    for x in counts:
        if not 1 <= x <= 10**7:
            raise ValueError(f"chip count {x} must be in [1, 10000000]")
    w, key, c, net = _prepare(workload, chip_key, counts[0], precision, catalog, chip)
    grids = [layout_grid(w, x, _max_tp(net)) for x in counts]
    sizes = [len(g["tp"]) for g in grids]
    if sum(sizes) == 0:
        return np.zeros(len(counts))
    cols = {f: np.concatenate([g[f] for g in grids]) for f in LAYOUT_FIELDS}
    ns = np.concatenate([np.full(s, float(x)) for s, x in zip(sizes, counts)])
    units, _, _ = evaluate_grid(w, c, net, cols, ns, eff)
    out = np.zeros(len(counts))
    start = 0
    for j, s in enumerate(sizes):
        if s:
            out[j] = units[start : start + s].max()
        start += s
    return out
