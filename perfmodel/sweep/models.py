"""Sweepable model of chip-spec uncertainty (``chips``); the fleet model (``fleet``) is in
:mod:`perfmodel.sweep.fleet_model`.

Each factory takes the spec's ``[model]`` table and returns a
:class:`perfmodel.sweep.spec.Model`: a pure ``evaluate(params_batch) -> columns``
with the batch axis first, the uncertain inputs it knows and their default
distributions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.equivalence import chip_spec
from perfmodel.hardware import (
    BYTES_PER_ELEMENT,
    CHIP_FIELDS,
    PRECISION_FALLBACK,
    PRECISION_INDEX,
    PRECISION_KEYS,
    PRECISIONS,
    Chip,
    ChipRecord,
    load_catalog,
)
from perfmodel.roofline import (
    OP_KINDS,
    Efficiency,
    Op,
    attention,
    elementwise,
    layernorm,
    matmul,
    op_time,
    stack_ops,
)
from perfmodel.sweep.params import Param, triangular
from perfmodel.sweep.spec import Model

# --------------------------------------------------------------------------------------
# chips: catalog ranges -> step time and H100-equivalents (roofline step model)
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Transformer:
    """A dense decoder-only transformer (SwiGLU MLP, grouped-query attention)."""

    name: str
    d_model: int
    n_layers: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    seq_len: int
    global_batch_tokens: float

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def params(self) -> float:
        """Parameter count: per layer attention (q, k, v, o) + 3 MLP matrices; embedding
        and untied output head."""
        d, kv = self.d_model, self.n_kv_heads * self.head_dim
        per_layer = d * (d + 2 * kv) + d * d + 3 * d * self.d_ff
        return float(self.n_layers * per_layer + 2 * self.vocab * d)


#: Shapes from the published model cards/papers (GPT-3: Brown et al. 2020, table 2.1;
#: Llama 3: Meta, "The Llama 3 Herd of Models", 2024, table 3). Global batch in tokens as
#: published (GPT-3 175B: 3.2M; Llama 3 405B: 16M at the end; 8B/70B: 4M used here).
TRANSFORMERS: dict[str, Transformer] = {
    "gpt3-175b": Transformer("gpt3-175b", 12288, 96, 49152, 96, 96, 50257, 2048, 3.2e6),
    "llama3-8b": Transformer("llama3-8b", 4096, 32, 14336, 32, 8, 128256, 8192, 4.0e6),
    "llama3-70b": Transformer("llama3-70b", 8192, 80, 28672, 64, 8, 128256, 8192, 4.0e6),
    "llama3-405b": Transformer("llama3-405b", 16384, 126, 53248, 128, 8, 128256, 8192, 16.0e6),
}

#: Chips swept by default (those present in the catalog with a rate at the precision).
DEFAULT_CHIPS = ("h100_sxm", "h200", "b200", "gb200", "mi300x", "dojo_tile", "a100_80gb")

EFF_PARAMS = {
    "eff.matmul": "achieved fraction of dense peak on matmuls (roofline compute efficiency)",
    "eff.attention": "achieved fraction of dense peak on fused attention",
    "eff.sram": "achieved fraction of SRAM bandwidth",
    "eff.dram": "achieved fraction of DRAM (HBM) bandwidth",
    "eff.overhead_s": "fixed time per op (launch, tail), s",
    "eff.comm": "achieved fraction of link bandwidth in collectives",
}


def layer_ops(w: Transformer, tokens: float, dtype: str) -> tuple[list[Op], list[float]]:
    """Forward ops of the whole model on ``tokens`` tokens (one chip's share), as
    (ops, repeat counts). Per layer: QKV projection, causal flash attention, output
    projection, SwiGLU gate+up and down projections, two norms, residual adds and the
    SwiGLU product; once: the output head."""
    d, hd, kv = w.d_model, w.head_dim, w.n_kv_heads * w.head_dim
    seqs = tokens / w.seq_len
    L = float(w.n_layers)
    ops = [
        matmul(tokens, d + 2 * kv, d, dtype),
        attention(seqs, w.n_heads, w.seq_len, w.seq_len, hd, dtype, causal=True),
        matmul(tokens, d, d, dtype),
        matmul(tokens, 2 * w.d_ff, d, dtype),
        matmul(tokens, d, w.d_ff, dtype),
        layernorm(tokens, d, dtype),
        elementwise(tokens * d, dtype, inputs=2, outputs=1),
        elementwise(tokens * w.d_ff, dtype, inputs=2, outputs=1, flops_per_element=4.0),
        matmul(tokens, w.vocab, d, dtype),
    ]
    counts = [L, L, L, L, L, 2 * L, 2 * L, L, 1.0]
    return ops, counts


def chip_from_values(rec: ChipRecord, vals: Mapping[str, Any]) -> Chip:
    """The :class:`Chip` of catalog record ``rec`` with figures taken from ``vals``
    (catalog key -> value, traced or not; missing keys use the record's best value).
    Same rules as :meth:`ChipRecord.to_chip`: precision fallback, SRAM bandwidth =
    DRAM bandwidth when not listed, all-in power/price default to TDP/price."""

    def val(key: str, default: float | None = None):
        if key in vals:
            return jnp.asarray(vals[key], jnp.float64)
        return jnp.asarray(rec.value(key, "best", default), jnp.float64)

    peaks = []
    for p in PRECISIONS:
        rate = jnp.asarray(0.0, jnp.float64)
        for q in PRECISION_FALLBACK[p]:
            if PRECISION_KEYS[q] in rec.figures:
                rate = val(PRECISION_KEYS[q])
                break
        peaks.append(rate)
    dram_bw = val("dram_bytes_per_s")
    sram_bw = val("sram_bytes_per_s") if "sram_bytes_per_s" in rec.figures else dram_bw
    tdp = val("tdp_w")
    price = val("price_usd", 0.0)
    return Chip(
        peak_flops_per_s=jnp.stack(peaks),
        mem_bytes=jnp.stack([val("sram_bytes", 0.0), val("dram_bytes")]),
        mem_bytes_per_s=jnp.stack([sram_bw, dram_bw]),
        scaleup_bytes_per_s=val("scaleup_bytes_per_s_per_dir", 0.0),
        scaleout_bytes_per_s=val("scaleout_bytes_per_s_per_dir", 0.0),
        host_bytes_per_s=val("host_bytes_per_s_per_dir", 0.0),
        tdp_w=tdp,
        allin_power_w=val("allin_power_w") if "allin_power_w" in rec.figures else tdp,
        price_usd=price,
        allin_price_usd=val("allin_price_usd") if "allin_price_usd" in rec.figures else price,
        name=rec.key,
    )


_OPS_CACHE: dict[tuple, tuple] = {}


def _step_ops(w: Transformer, n_chips: int, precision: str):
    """Concrete (numpy-leaf) op list of one chip's step, cached: built outside any trace
    so that FLOP counts stay Python numbers."""
    key = (w, n_chips, precision)
    if key not in _OPS_CACHE:
        with jax.ensure_compile_time_eval():
            ops, counts = layer_ops(w, w.global_batch_tokens / n_chips, precision)
            stacked = jax.tree_util.tree_map(np.asarray, stack_ops(ops))
            opt = elementwise(
                w.params / n_chips, "fp32", inputs=4, outputs=3, flops_per_element=10.0
            )
            opt = jax.tree_util.tree_map(np.asarray, opt)
        fwd_flops = float(np.sum(np.asarray(counts) * stacked.flops))
        _OPS_CACHE[key] = (stacked, tuple(counts), fwd_flops, opt)
    return _OPS_CACHE[key]


def train_step(
    w: Transformer,
    chip: Chip,
    n_chips: int,
    precision: str,
    eff: Efficiency,
    comm_eff,
    domain_size: int,
) -> dict[str, jax.Array]:
    """Roofline step model of fully sharded data parallel (ZeRO-3) training.

    Each of ``n`` chips processes ``T = global_batch_tokens / n`` tokens per step::

        compute_s = 3 * sum_op count_op * op_time(op(T), chip)     (backward = 2 x forward)
                    + op_time(Adam update of P/n fp32 parameters)
        comm_s    = 3 * P * b * [ (D-1)/D / (e * scaleup) + (G-1)/G / (D * e * scaleout) ]
                    (all-gather weights for forward and backward, reduce-scatter gradients;
                     2-level ring: D chips per scale-up domain, G = n / D domains)
        step_s    = max(compute_s, comm_s)                          (communication overlapped)
        memory    = 16 P / n + 2 T d L + T (10 d + 2 d_ff) b        (bytes per chip)

    Args:
      w: the transformer; chip: the chip pytree; n_chips: cluster size; precision: the
      compute precision name; eff: roofline efficiencies; comm_eff: fraction of link
      bandwidth achieved; domain_size: chips per scale-up domain.

    Returns:
      dict with ``step_s``, ``compute_s``, ``comm_s`` (s), ``model_flops`` (FLOP per
      step, whole cluster), ``memory_bytes`` (per chip).
    """
    b = BYTES_PER_ELEMENT[precision]
    tokens = w.global_batch_tokens / n_chips
    stacked, counts, fwd_flops, opt = _step_ops(w, n_chips, precision)
    times = jax.vmap(op_time, in_axes=(0, None, None))(stacked, chip, eff).time_s
    fwd_s = jnp.sum(jnp.asarray(counts) * times)
    p = w.params
    compute_s = 3.0 * fwd_s + op_time(opt, chip, eff).time_s
    D = min(domain_size, n_chips)
    G = n_chips / D
    up = jnp.maximum(
        jnp.where(chip.scaleup_bytes_per_s > 0, chip.scaleup_bytes_per_s, chip.scaleout_bytes_per_s)
        * comm_eff,
        1.0,
    )
    out = jnp.maximum(
        jnp.where(
            chip.scaleout_bytes_per_s > 0, chip.scaleout_bytes_per_s, chip.scaleup_bytes_per_s
        )
        * comm_eff,
        1.0,
    )
    comm_s = 3.0 * p * b * ((D - 1) / D / up + (G - 1) / G / (D * out))
    step_s = jnp.maximum(compute_s, comm_s)
    memory = (
        16.0 * p / n_chips
        + 2.0 * tokens * w.d_model * w.n_layers
        + tokens * (10.0 * w.d_model + 2.0 * w.d_ff) * b
    )
    return {
        "step_s": step_s,
        "compute_s": compute_s,
        "comm_s": comm_s,
        "model_flops": jnp.asarray(3.0 * fwd_flops * n_chips),
        "memory_bytes": jnp.asarray(memory),
    }


TRAIN_EFF_PARAMS = {
    "eff.matmul": "achieved fraction of dense peak on matmuls (training model default 0.60)",
    "eff.attention": "achieved fraction of dense peak on attention (default 0.50)",
    "eff.sram": "achieved fraction of SRAM bandwidth (default 0.90)",
    "eff.dram": "achieved fraction of DRAM bandwidth (default 0.85)",
    "eff.overhead_s": "fixed time per op, s (default 3e-6)",
    "eff.tp_overlap": "fraction of tensor-parallel communication hidden (default 0.5)",
    "eff.dp_tail": "exposed fraction of each data-parallel collective (default 0.1)",
    "eff.mem_usable": "usable fraction of DRAM (default 0.95)",
}


def _training_one(cat, recs, keys, ref_key, precs, wname, n):
    """Per-sample evaluation with :func:`perfmodel.training.step_time`.

    For each chip, the candidate layouts are the best layouts found by
    :func:`perfmodel.training.best_layout` with the catalog's low, best and high figures
    (computed once, outside ``jit``); per sample, every candidate is re-timed with the
    sampled chip and the fastest one that fits and is valid is kept. The per-chip
    network's bandwidths scale with the sampled ``scaleup``/``scaleout`` figures.
    """
    base_w = wl.get_workload(wname)
    chips_best = {k: r.to_chip("best") for k, r in recs.items()}
    prep: dict[str, tuple] = {}

    def prepare() -> None:  # the layout searches run once, when the sweep is traced
        if not prep:
            _prepare_layouts(prep, tr, cat, recs, base_w, precs, wname, n)

    te0 = tr.default_efficiency()
    kind = {kk: i for i, kk in enumerate(OP_KINDS)}

    def one(p: dict[str, jax.Array]) -> dict[str, jax.Array]:
        prepare()
        rf_eff = te0.roofline
        comp, mem = rf_eff.compute, rf_eff.memory
        if "eff.matmul" in p:
            comp = (
                comp.at[kind["matmul"]].set(p["eff.matmul"]).at[kind["conv2d"]].set(p["eff.matmul"])
            )
        if "eff.attention" in p:
            comp = comp.at[kind["attention"]].set(p["eff.attention"])
        if "eff.sram" in p:
            mem = mem.at[0].set(p["eff.sram"])
        if "eff.dram" in p:
            mem = mem.at[1].set(p["eff.dram"])
        te = dataclasses.replace(
            te0, roofline=Efficiency(comp, mem, p.get("eff.overhead_s", rf_eff.overhead_s))
        )
        for f in ("tp_overlap", "dp_tail", "mem_usable"):
            if f"eff.{f}" in p:
                te = dataclasses.replace(te, **{f: p[f"eff.{f}"]})
        res, chips = {}, {}
        for k, r in recs.items():
            vals = {f: p[f"{k}.{f}"] for f in r.figures if f"{k}.{f}" in p}
            c = dataclasses.replace(chip_from_values(r, vals), name="")
            chips[k] = c
            w, net, lays = prep[k]
            b = chips_best[k]
            up = jnp.where(
                b.scaleup_bytes_per_s > 0,
                c.scaleup_bytes_per_s
                / jnp.where(b.scaleup_bytes_per_s > 0, b.scaleup_bytes_per_s, 1.0),
                1.0,
            )
            out = jnp.where(
                b.scaleout_bytes_per_s > 0,
                c.scaleout_bytes_per_s
                / jnp.where(b.scaleout_bytes_per_s > 0, b.scaleout_bytes_per_s, 1.0),
                1.0,
            )
            net_k = net.replace(
                scaleup_bytes_per_s=net.scaleup_bytes_per_s * up,
                scaleout_bytes_per_s=net.scaleout_bytes_per_s * out,
            )
            r_all = jax.vmap(tr.step_time, in_axes=(None, None, None, 0, None, None))(
                w, c, net_k, lays, jnp.asarray(float(n)), te
            )
            ok = r_all.fits & r_all.valid
            units = jnp.where(ok, r_all.units_per_s, 0.0)
            i = jnp.argmax(units)
            res[k] = {
                "units": units[i],
                "step_s": jnp.where(ok[i], r_all.step_time_s[i], jnp.inf),
                "mfu": jnp.where(ok[i], r_all.mfu[i], 0.0),
                "memory_bytes": r_all.memory_bytes[i],
                "fits": ok[i].astype(jnp.float64),
                "comm_s": r_all.tp_comm_s[i]
                + r_all.cp_comm_s[i]
                + r_all.pp_comm_s[i]
                + r_all.dp_comm_s[i],
            }
        ref_units = res[ref_key]["units"]
        ref_peak = chips[ref_key].peak(precs[ref_key])
        out_cols: dict[str, jax.Array] = {}
        per_usd, per_w = [], []
        for k in keys:
            r, c = res[k], chips[k]
            h = n * r["units"] / jnp.where(ref_units > 0, ref_units, jnp.nan)
            out_cols[f"h100e.{k}"] = h
            out_cols[f"spec_h100e.{k}"] = c.peak(precs[k]) / ref_peak
            out_cols[f"step_time_s.{k}"] = r["step_s"]
            out_cols[f"units_per_s.{k}"] = r["units"]
            out_cols[f"mfu.{k}"] = r["mfu"]
            out_cols[f"comm_share.{k}"] = jnp.where(
                r["fits"] > 0, r["comm_s"] / r["step_s"], jnp.nan
            )
            out_cols[f"memory_bytes.{k}"] = r["memory_bytes"]
            out_cols[f"fits.{k}"] = r["fits"]
            _cost_columns(out_cols, k, c, n, h, jnp.nan_to_num(h, nan=-jnp.inf), per_usd, per_w)
        _best_columns(out_cols, keys, per_usd, per_w)
        return out_cols

    return one


def _cost_columns(out: dict, k: str, c, n, h, h_best, per_usd: list, per_w: list) -> None:
    """Chip ``k``'s H100e per $M and per MW of ``n`` chips (all-in price and power) into
    ``out``; its ``h_best`` per dollar and per watt (a chip without a price: -inf) onto
    ``per_usd`` and ``per_w``, for :func:`_best_columns`."""
    usd = jnp.maximum(n * c.allin_price_usd, 1e-9)
    watt = jnp.maximum(n * c.allin_power_w, 1e-9)
    out[f"h100e_per_musd.{k}"] = h / usd * 1e6
    out[f"h100e_per_mw.{k}"] = h / watt * 1e6
    per_usd.append(jnp.where(c.allin_price_usd > 0, h_best / usd, -jnp.inf))
    per_w.append(h_best / watt)


def _best_columns(out: dict, keys, per_usd: list, per_w: list) -> None:
    """One-hot ``best_per_usd.<k>`` and ``best_per_w.<k>``: the chip of ``keys`` with the
    most H100e per dollar and per watt."""
    bu, bw = jnp.argmax(jnp.stack(per_usd)), jnp.argmax(jnp.stack(per_w))
    for i, k in enumerate(keys):
        out[f"best_per_usd.{k}"] = (bu == i).astype(jnp.float64)
        out[f"best_per_w.{k}"] = (bw == i).astype(jnp.float64)


def _prepare_layouts(prep, tr, cat, recs, base_w, precs, wname, n) -> None:
    """Candidate layouts per chip: the best layouts at the catalog's best/low/high
    figures (concrete; computed outside any trace)."""
    with jax.ensure_compile_time_eval():
        for k, r in recs.items():
            w = base_w.with_precision(precs[k]).replace(name="")
            net = tr.get_network(k, cat)
            lays = {}
            for pick in ("best", "low", "high"):
                try:
                    res = tr.best_layout(w, k, n, chip=r.to_chip(pick), catalog=cat)
                except ValueError:
                    continue
                lays[tuple(sorted(res.layout.items()))] = res.layout
            if not lays:
                raise ValueError(
                    f"model.chips: no parallel layout of '{wname}' fits on {n} x {k} "
                    "(at the catalog's low, best or high figures)"
                )
            stacked = jax.tree_util.tree_map(
                lambda *xs: jnp.stack(xs), *[tr.make_layout(**lay) for lay in lays.values()]
            )
            prep[k] = (w, net, jax.tree_util.tree_map(np.asarray, stacked))


def _precision_for(cfg_prec: Any, key: str) -> str:
    p = (
        cfg_prec.get(key, cfg_prec.get("default", "bf16"))
        if isinstance(cfg_prec, Mapping)
        else cfg_prec
    )
    if p not in PRECISION_INDEX:
        raise ValueError(f"model.precision for '{key}' = {p!r} must be one of {PRECISIONS}")
    return p


def chips_model(config: Mapping[str, Any], catalog=None) -> Model:
    """Chip-spec uncertainty: per sample, every chip's estimated figures are drawn from
    the catalog's low/best/high (triangular by default) and the roofline step model
    (:func:`train_step`) gives step time, tokens/s, MFU and H100-equivalents.

    ``[model]`` keys: ``chips`` (catalog keys; default: those of :data:`DEFAULT_CHIPS`
    in the catalog), ``reference`` (``"h100"``), ``workload`` (one of
    :data:`TRANSFORMERS`, default ``"llama3-70b"``), ``n_chips`` (1024), ``precision``
    (``"bf16"``, or a table chip -> precision with an optional ``default``),
    ``domain_size`` (8).

    Inputs: ``<chip>.<catalog field>`` for every figure of every swept chip (SI units,
    e.g. ``dojo_tile.bf16_flops_per_s``) and ``eff.*`` (:data:`EFF_PARAMS`).

    Outputs per chip ``c``: ``h100e.c`` (H100s with the same training throughput at the
    same cluster size: ``n * tokens_per_s(c) / tokens_per_s(H100)``), ``spec_h100e.c``
    (peak ratio at the precision), ``step_time_s.c``, ``mfu.c``, ``memory_bytes.c``,
    ``fits.c`` (1 if it fits in DRAM), ``h100e_per_musd.c`` (per $1M all-in),
    ``h100e_per_mw.c`` (per MW all-in IT power); decisions ``best_per_usd.c`` and
    ``best_per_w.c`` (1 for the chip with the most H100e per dollar / per watt).
    """
    cfg = dict(config)
    allowed = {"chips", "reference", "workload", "n_chips", "precision", "domain_size", "engine"}
    bad = set(cfg) - allowed
    if bad:
        raise ValueError(
            f"model: unknown key(s) {sorted(bad)} for model 'chips'; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    cat = catalog or load_catalog()
    engine_name = cfg.get("engine", "training")
    if engine_name not in ("training", "roofline"):
        raise ValueError(f"model.engine = {engine_name!r} must be 'training' or 'roofline'")
    wname = cfg.get("workload", "llama3-70b")
    if engine_name == "roofline":
        if wname not in TRANSFORMERS:
            raise ValueError(
                f"model.workload = {wname!r} must be one of {', '.join(TRANSFORMERS)} "
                "(engine 'roofline')"
            )
        w = TRANSFORMERS[wname]
    else:
        if wname not in wl.WORKLOAD_NAMES:
            raise ValueError(
                f"model.workload = {wname!r} must be one of {', '.join(wl.WORKLOAD_NAMES)}"
            )
        w = None
    n = cfg.get("n_chips", 1024)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**7:
        raise ValueError(f"model.n_chips = {n!r} must be an integer in [1, 1e7]")
    dom = cfg.get("domain_size", 8)
    if isinstance(dom, bool) or not isinstance(dom, int) or not 1 <= dom <= 10**5:
        raise ValueError(f"model.domain_size = {dom!r} must be an integer in [1, 1e5]")
    prec_cfg = cfg.get("precision", "bf16")
    ref_key = cat.resolve(cfg.get("reference", "h100"))
    if "chips" in cfg:
        raw = cfg["chips"]
        if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
            raise ValueError(f"model.chips = {raw!r} must be a non-empty list of chip names")
        keys = []
        for c in raw:
            try:
                keys.append(cat.resolve(c))
            except ValueError as e:
                raise ValueError(f"model.chips: {e}") from None
    else:
        keys = [
            k
            for k in DEFAULT_CHIPS
            if k in cat.chips and cat.chips[k].to_chip().peak(_precision_for(prec_cfg, k)) > 0
        ]
    keys = list(dict.fromkeys(keys))
    recs = {k: cat.chips[k] for k in dict.fromkeys([ref_key, *keys])}
    precs = {k: _precision_for(prec_cfg, k) for k in recs}
    for k, r in recs.items():
        if float(r.to_chip().peak(precs[k])) <= 0:
            raise ValueError(
                f"model.precision: chip '{k}' has no {precs[k]} rate (nor a fallback); "
                f'set [model.precision] {k} = "int8" (or another it has)'
            )
    known: dict[str, str] = dict(EFF_PARAMS if engine_name == "roofline" else TRAIN_EFF_PARAMS)
    defaults: list[Param] = []
    for k, r in recs.items():
        for f, fig in r.figures.items():
            if f not in CHIP_FIELDS or f == "unit_count":
                continue
            known[f"{k}.{f}"] = (
                f"{r.display_name}: {f} ({fig.unit}), catalog {fig.low:g}..{fig.high:g}"
            )
            if fig.low < fig.high:
                defaults.append(triangular(fig.low, fig.best, fig.high, f"{k}.{f}"))
    base = Efficiency.default()
    kind = {k: i for i, k in enumerate(OP_KINDS)}

    def one(p: dict[str, jax.Array]) -> dict[str, jax.Array]:
        assert w is not None  # this is the "roofline" engine: w is a TRANSFORMERS entry
        comp = base.compute
        if "eff.matmul" in p:
            comp = (
                comp.at[kind["matmul"]].set(p["eff.matmul"]).at[kind["conv2d"]].set(p["eff.matmul"])
            )
        if "eff.attention" in p:
            comp = comp.at[kind["attention"]].set(p["eff.attention"])
        mem = base.memory
        if "eff.sram" in p:
            mem = mem.at[0].set(p["eff.sram"])
        if "eff.dram" in p:
            mem = mem.at[1].set(p["eff.dram"])
        eff = Efficiency(comp, mem, p.get("eff.overhead_s", base.overhead_s))
        comm_eff = p.get("eff.comm", jnp.asarray(0.8))
        res, chips = {}, {}
        for k, r in recs.items():
            vals = {f: p[f"{k}.{f}"] for f in r.figures if f"{k}.{f}" in p}
            chips[k] = chip_from_values(r, vals)
            res[k] = train_step(w, chips[k], n, precs[k], eff, comm_eff, dom)
        ref = res[ref_key]
        ref_tps = w.global_batch_tokens / ref["step_s"]
        ref_peak = chips[ref_key].peak(precs[ref_key])
        out: dict[str, jax.Array] = {}
        per_usd, per_w = [], []
        for k in keys:
            r, c = res[k], chips[k]
            tps = w.global_batch_tokens / r["step_s"]
            h = n * tps / ref_tps
            out[f"h100e.{k}"] = h
            out[f"spec_h100e.{k}"] = c.peak(precs[k]) / ref_peak
            out[f"step_time_s.{k}"] = r["step_s"]
            out[f"tokens_per_s.{k}"] = tps
            out[f"mfu.{k}"] = r["model_flops"] / (n * c.peak(precs[k]) * r["step_s"])
            out[f"comm_share.{k}"] = r["comm_s"] / r["step_s"]
            out[f"memory_bytes.{k}"] = r["memory_bytes"]
            out[f"fits.{k}"] = (r["memory_bytes"] <= c.mem_bytes[1]).astype(jnp.float64)
            _cost_columns(out, k, c, n, h, h, per_usd, per_w)
        _best_columns(out, keys, per_usd, per_w)
        return out

    if engine_name == "training":
        one = _training_one(cat, recs, keys, ref_key, precs, wname, n)

    def evaluate(params: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return jax.vmap(one)(params)

    metrics = tuple(f"h100e.{k}" for k in keys) + tuple(f"h100e_per_musd.{k}" for k in keys)
    config_out = {
        "chips": keys,
        "reference": ref_key,
        "workload": wname,
        "n_chips": n,
        "precision": precs,
        "domain_size": dom,
        "engine": engine_name,
    }
    user = {k: sp.cache_name for k in recs if not (sp := chip_spec(k, cat)).builtin}
    if user:  # chips of a --catalog file: a resumed sweep must see the same figures
        config_out["user_chips"] = user
    return Model(
        "chips",
        config_out,
        tuple(defaults),
        known,
        evaluate,
        metrics,
        ("best_per_usd.", "best_per_w."),
        0.5,
    )


__all__ = [
    "TRANSFORMERS",
    "Transformer",
    "chip_from_values",
    "chips_model",
    "layer_ops",
    "train_step",
]
