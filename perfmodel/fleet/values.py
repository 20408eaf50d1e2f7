"""Per-chip rates of each offer on each workload, for placement of work.

``rate[k, w]`` is what one chip of offer k delivers on workload w, in the workload's own
unit (:class:`~perfmodel.fleet.demand.WorkloadSpec` ``unit``):

* training: H100e of that workload per chip, from the training model's capacity-mode
  value curve (:func:`perfmodel.fleet.curves.value_curve`) at ``REF_CHIPS`` chips
  divided by ``REF_CHIPS`` (the best per-chip throughput of a slice, as in the fleet
  view; placement is linear in chips);
* inference, model "forward": samples (or tokens) per second per chip of forward-only
  passes at int8 (:func:`perfmodel.training.inference_throughput` on ``REF_CHIPS``
  chips) -- the in-the-loop inference of the FSD computers;
* inference, model "serving": tokens/s per chip of the serving model at the workload's
  latency target (``scenario``: MLPerf Offline by default, no limit; Server or
  Interactive, the best tokens/s meeting their p99 TTFT / TPOT limits;
  :func:`perfmodel.serving.serve` on one purchase unit, at most 72 chips).

``h100e_per_unit[w]`` converts a workload's unit into H100e: 1 for training, one over
the H100's rate for inference, so that the objective weighs all work in H100e.

A chip the model cannot value on a workload (it does not fit, does not support the
precision, the offer does not count toward H100e, or the offer's ``serves`` leaves the
workload out) gets rate 0 and a reason, which the report prints as a why-not. There is
no stand-in unless ``source="standin"`` is asked for (tests): then every rate is the
labelled spec-ratio stand-in (H100e per chip for training, ``STANDIN_H100_RATE`` units/s
per H100 scaled by the spec ratio for inference).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from perfmodel import model_cache
from perfmodel.equivalence import ChipSpec, chip_spec
from perfmodel.errors import InputError
from perfmodel.fleet import curves
from perfmodel.fleet.curves import standin_h100e, value_curve
from perfmodel.fleet.demand import WorkloadSpec
from perfmodel.serving import serve
from perfmodel.training import inference_throughput

__all__ = [
    "REF_CHIPS",
    "REFERENCE_CHIP",
    "STANDIN_H100_RATE",
    "workload_rates",
    "chip_rate",
    "cost_and_placement_leaves",
    "frozen_leaf",
]

#: Chips at which the per-chip rate is read (a slice size every chip kind reaches).
REF_CHIPS = 64
#: The H100e reference chip.
REFERENCE_CHIP = "h100_sxm"
#: STAND-IN only (``source="standin"``, tests): an H100's inference rate, units/s per
#: chip; other chips scale by their spec ratio. Not a model figure.
STANDIN_H100_RATE = 100.0


def _fingerprint() -> str:
    """The value curves' hash of the model sources (curves.model_fingerprint; named
    _model_fingerprint before curves.py made it public)."""
    fn = getattr(curves, "model_fingerprint", None) or getattr(curves, "_model_fingerprint")
    return str(fn())


#: The cache file (in :func:`perfmodel.model_cache.cache_dir`) of the inference rates.
RATES_FILE = "fleet_rates.json"


def _spec(chip: str | ChipSpec) -> ChipSpec:
    return chip_spec(chip)


@functools.lru_cache(maxsize=1024)
def chip_rate(
    chip: str | ChipSpec,
    name: str,
    model: str,
    pick: str,
    source: str,
    n_unit: int,
    scenario: str | None = None,
) -> float:
    """What one chip of ``chip`` (a built-in key, or a
    :class:`~perfmodel.equivalence.ChipSpec` of a user catalog) delivers on workload
    ``name`` with ``model`` (see the module docstring), in the workload's unit;
    ``scenario`` is the serving model's latency target (None: offline). Raises
    ValueError when the model cannot value it (the message says why). Inference rates
    are cached on disk (``$PERFMODEL_CACHE_DIR/fleet_rates.json``) keyed by the model
    sources' hash (the value curves' fingerprint), the chip's
    :attr:`~perfmodel.equivalence.ChipSpec.cache_name` (its key, with the digest of its
    catalog records unless they are the built-in ones), workload, model, scenario, pick
    and unit; errors are not cached."""
    spec = _spec(chip)
    if source == "standin":
        unit = 1.0 if model == "training" else STANDIN_H100_RATE
        return float(standin_h100e(spec, [1.0])[0]) * unit
    if model != "training":
        sc = (scenario or "offline") if model == "serving" else None
        # the offline key is the one written before scenarios existed (same value)
        tail = "" if sc in (None, "offline") else f"|{sc}"
        key = f"{_fingerprint()}|{spec.cache_name}|{name}|{model}|{pick}|{n_unit}{tail}"
        hit = model_cache.get(key, RATES_FILE)
        if hit is None:
            hit = _inference_rate(spec, name, model, n_unit, sc or "offline")
            model_cache.put(key, hit, RATES_FILE)
        return float(hit)
    # "equivalence": the training model or its error (which says why), never a stand-in
    v, _ = value_curve(spec, ((name, 1.0),), [float(REF_CHIPS)], pick=pick, source="equivalence")
    return float(v[0]) / REF_CHIPS


def _inference_rate(
    spec: ChipSpec, name: str, model: str, n_unit: int, scenario: str = "offline"
) -> float:
    if model == "forward":
        r = inference_throughput(
            name,
            spec.key,
            REF_CHIPS,
            precision="int8",
            details=False,
            chip=spec.chip(),
            catalog=spec.catalog,
        )
        return float(np.asarray(r)) / REF_CHIPS

    n = max(1, min(int(n_unit), 72))
    return float(serve(name, spec.key, n, scenario, catalog=spec.catalog)["tokens_per_s_per_chip"])


def _rate_or_reason(chip, spec: WorkloadSpec, pick, source, n_unit) -> tuple[float, str]:
    try:
        r = chip_rate(chip, spec.name, spec.model, pick, source, n_unit, spec.scenario)
    except InputError:  # a figure the chip lacks: the user's to fix, never a why-not
        raise
    except (ValueError, KeyError, ZeroDivisionError) as e:  # the model says why
        return 0.0, str(e).split("\n")[0]
    if not (np.isfinite(r) and r > 0):
        key = chip.key if isinstance(chip, ChipSpec) else chip
        return 0.0, f"the {spec.model} model gives {key} no throughput on {spec.name}"
    return r, ""


def workload_rates(
    offers,
    specs: tuple[WorkloadSpec, ...],
    *,
    pick: str,
    source: str,
    chips: tuple[ChipSpec, ...] | None = None,
):
    """``(rate [K, W], h100e_per_unit [W], reasons)`` for ``offers`` on ``specs``;
    ``reasons``: ``(offer, workload key, why)`` for every pair with rate 0. ``chips``:
    the offers' chips resolved in the scenario's catalog (default: their keys in the
    built-in one); the H100 reference is the one of the same catalog."""
    K, W = len(offers), len(specs)
    if chips is None:
        chips = tuple(_spec(o.chip) for o in offers)
    cat = chips[0].catalog if chips else None
    ref_chip = chip_spec(REFERENCE_CHIP, cat)
    rate = np.zeros((K, W))
    reasons = []
    per_unit = np.ones(W)
    for w, spec in enumerate(specs):
        if spec.kind == "inference":
            ref, why = _rate_or_reason(ref_chip, spec, "best", source, 8)
            if ref <= 0:
                raise ValueError(
                    f"workloads.{spec.key}: the {spec.model} model cannot value the H100 "
                    f"reference on {spec.name} ({why}), so its H100e are undefined"
                )
            per_unit[w] = 1.0 / ref
        for k, o in enumerate(offers):
            if o.serves and spec.key not in o.serves:
                reasons.append((o.key, spec.key, f"offers.{o.key}.serves leaves {spec.key} out"))
                continue
            if spec.kind == "training" and not o.counts:
                reasons.append((o.key, spec.key, "counts = false: no training H100e"))
                continue
            r, why = _rate_or_reason(chips[k], spec, pick, source, int(o.chips_per_unit))
            rate[k, w] = r
            if r <= 0:
                reasons.append((o.key, spec.key, why))
    return rate, per_unit, tuple(reasons)


def frozen_leaf(x) -> np.ndarray:
    """A :class:`~perfmodel.fleet.problem.Problem` leaf: a read-only C-ordered NumPy copy
    of ``x``. Concrete problems hold NumPy arrays, not JAX ones: building and planning
    one then runs no JAX program (each eager JAX op is a compiled program, about 10 ms
    each in a new process); under ``jit``/``vmap`` they are converted like any input."""
    a = np.array(x, order="C")
    a.flags.writeable = False
    return a


def cost_and_placement_leaves(sc, T: int, *, pick: str, value_source: str) -> dict:
    """The :class:`~perfmodel.fleet.problem.Problem` fields of a scenario's costs
    (lifetimes, energy, utilisation, opex) and placement (rates, demand, weights)."""
    K, S = len(sc.offers), len(sc.sites)
    life = np.array([o.lifetime_quarters or 10**6 for o in sc.offers], dtype=np.float64)
    energy = np.array(
        [s.energy_usd_per_mwh or (0.0,) * T for s in sc.sites], dtype=np.float64
    ).reshape(S, T)
    out: dict[str, Any] = dict(
        lifetime_q=frozen_leaf(np.minimum(life, 10**6).reshape(K)),
        energy_usd_per_mwh=frozen_leaf(energy),
        utilisation=frozen_leaf(np.array([s.utilisation for s in sc.sites]).reshape(S)),
        opex_usd_per_unit_q=frozen_leaf(
            np.array([o.opex_usd_per_unit_year / 4 for o in sc.offers]).reshape(K)
        ),
        tco_lambda=frozen_leaf(0.0),
    )
    specs = sc.workload_specs
    if not sc.placement:
        return out
    W = len(specs)
    rate, per_unit, reasons = workload_rates(
        sc.offers, specs, pick=pick, source=value_source, chips=sc.chip_specs()
    )
    demand = np.array([w.demand or (0.0,) * T for w in specs], dtype=np.float64).T
    out.update(
        rate=frozen_leaf(rate.reshape(K, W)),
        demand=frozen_leaf(demand.reshape(T, W)),
        h100e_per_unit=frozen_leaf(per_unit.reshape(W)),
        workload_weight=frozen_leaf(np.array([w.weight for w in specs]).reshape(W)),
        placement=True,
        workload_keys=tuple(w.key for w in specs),
        workload_units=tuple(w.unit for w in specs),
        has_demand=tuple(w.demand is not None for w in specs),
        ineligible=reasons,
    )
    return out
