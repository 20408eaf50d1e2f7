"""H100-equivalents: spec-sheet, workload-at-scale, budget and power equivalence.

Definitions (the reference is an NVIDIA H100 SXM at its ``best`` catalog figures, in
DGX/HGX H100 systems with their normal network, as :mod:`perfmodel.training` models it):

* **Spec-sheet equivalence** of a chip at precision ``p``::

      spec_h100e = peak_dense_flops_per_s(chip, p) / peak_dense_flops_per_s(H100, p)

* **Workload equivalence at scale.** ``T_X(n)`` is the throughput (work units per
  second: tokens/s, samples/s) of ``n`` chips of kind X on workload W at the best
  parallel layout. Both X and H100 throughputs are tabulated on one geometric grid of
  counts (1, 2, 3, 4, 6, 8, ..., 262,144) and made *monotone* by a running maximum (a
  bigger cluster can always idle chips) plus a 1e-9 log-log slope that makes them strictly
  increasing. Off the grid, ``log T`` is piecewise linear in ``log n``. Below the smallest
  count that fits the job and above the largest grid count, throughput is extrapolated in
  proportion to the count (time-sharing a smaller cluster / independent copies of the
  largest one). Then::

      h100e(X, n, W) = m   such that   T_H100(m) = T_X(n)        (inverse of the H100 curve)

  Because X and the H100 use the same interpolation rule, ``n`` H100s are exactly ``n``
  H100-equivalents, on and off the grid (up to float rounding, ~1e-15 relative).
  The inversion is a piecewise-linear function of the curve values, so gradients with
  respect to the curves (and, via the chain rule, to chip specs) are exact where the
  interpolation is differentiable.

* **Budget equivalence**: ``n = budget_usd / allin_price_usd(X)`` chips, then
  ``h100e(X, n, W)``. The pure-price version is ``budget_usd / allin_price_usd(H100)``.
* **Power equivalence**: ``n = power_w / (pue * allin_power_w(X))`` chips, then
  ``h100e(X, n, W)``. ``allin_power_w`` is IT power per chip including host, network and
  storage; the PUE adds cooling and power-conversion overhead at the site.
* **Independent clusters** running independent jobs: the H100e of the collection is the
  *sum* of the clusters' separate H100e (:func:`fleet_equivalence`). A single job spread
  over them is a different (smaller or equal) quantity and is not what this measures.
* **Inference.** On a causal LLM workload: the H100s that would deliver the same output
  tokens/s in an MLPerf scenario (offline / server / interactive latency limits) by the
  fitted serving model (:func:`serving_equivalence_range`). **In the loop** (AI4/HW3
  computers, int8 vision, forward only): the H100s that would deliver the same
  forward-only throughput on the (video) workload at int8 (:func:`inference_equivalence`).

Ranges: ``low`` combines pessimistic performance (catalog ``low`` pick) with the high
price, high all-in power and high PUE; ``high`` the opposite. The H100 reference curve is
always at ``best`` figures, so identity holds in every scenario.

Bound (tested in tests/test_equivalence.py). In the training model every step-time term
is either a compute time ``F / peak``, a memory time ``B / bandwidth`` (SRAM or DRAM), a
communication time ``bytes / link bandwidth`` or a latency/overhead that does not depend
on the chip's rates; the max over layouts and the smooth max preserve the inequality
below. Hence, for a chip X with the same memory *capacities* as the H100 (so the same
feasible layouts and memory-level choices) and rate ratios ``r_i = rate_X / rate_H100``::

      T_X(n) <= c * T_H100(n),   c = max(1, r_flops, r_sram_bw, r_dram_bw, r_scaleup, r_scaleout)

so ``h100e(X, n) <= T_H100^{-1}(c * T_H100(n))``, which is ``c * n`` where the H100 scales
linearly; relative to spec-sheet equivalence ``n * r_flops`` this is
``h100e / spec_h100e <= c / r_flops``: workload equivalence exceeds spec-sheet equivalence
only by the factor a faster memory or network explains. Chips with more memory (other
layouts fit) or a larger SRAM (ops become SRAM-resident, e.g. Dojo) can exceed it; the
reports show that excess as ``bound_excess``.

Modules (each imports only those below it; an import-linter contract checks it):

* :mod:`~perfmodel.equivalence.budget`, :mod:`~perfmodel.equivalence.power`,
  :mod:`~perfmodel.equivalence.inference`: budget, power and in-the-loop equivalence;
* :mod:`~perfmodel.equivalence.workload`: workload equivalence at scale, its range;
* :mod:`~perfmodel.equivalence.model` (model curves, cached) and
  :mod:`~perfmodel.equivalence.spec` (spec-sheet equivalence);
* :mod:`~perfmodel.equivalence.curves` (the pure curve core) and
  :mod:`~perfmodel.equivalence.result` (:class:`EquivResult`);
* :mod:`~perfmodel.equivalence.definitions`: reference, grid, modes, PUE, units, checks.
"""

from perfmodel.equivalence.budget import budget_equivalence as budget_equivalence
from perfmodel.equivalence.budget import budget_equivalence_range as budget_equivalence_range
from perfmodel.equivalence.budget import h100_count_for_budget as h100_count_for_budget
from perfmodel.equivalence.chips import ChipSpec as ChipSpec
from perfmodel.equivalence.chips import check_trainable as check_trainable
from perfmodel.equivalence.chips import chip_digest as chip_digest
from perfmodel.equivalence.chips import chip_spec as chip_spec
from perfmodel.equivalence.curves import ScalingCurve as ScalingCurve
from perfmodel.equivalence.curves import bound_factor as bound_factor
from perfmodel.equivalence.curves import curve_count as curve_count
from perfmodel.equivalence.curves import curve_slope as curve_slope
from perfmodel.equivalence.curves import curve_throughput as curve_throughput
from perfmodel.equivalence.curves import equivalent_count as equivalent_count
from perfmodel.equivalence.curves import make_curve as make_curve
from perfmodel.equivalence.definitions import DEFAULT_GRID as DEFAULT_GRID
from perfmodel.equivalence.definitions import DEFAULT_PUE as DEFAULT_PUE
from perfmodel.equivalence.definitions import MODES as MODES
from perfmodel.equivalence.definitions import MONEY_UNITS as MONEY_UNITS
from perfmodel.equivalence.definitions import MONO_EPS as MONO_EPS
from perfmodel.equivalence.definitions import POWER_UNITS as POWER_UNITS
from perfmodel.equivalence.definitions import PUE_RANGE as PUE_RANGE
from perfmodel.equivalence.definitions import PUE_SOURCE as PUE_SOURCE
from perfmodel.equivalence.definitions import REFERENCE_CHIP as REFERENCE_CHIP
from perfmodel.equivalence.definitions import REFERENCE_SYSTEM as REFERENCE_SYSTEM
from perfmodel.equivalence.definitions import to_usd as to_usd
from perfmodel.equivalence.definitions import to_w as to_w
from perfmodel.equivalence.inference import INFERENCE_MODELS as INFERENCE_MODELS
from perfmodel.equivalence.inference import default_inference_model as default_inference_model
from perfmodel.equivalence.inference import inference_equivalence as inference_equivalence
from perfmodel.equivalence.inference import (
    inference_equivalence_range as inference_equivalence_range,
)
from perfmodel.equivalence.inference import (
    serving_equivalence_range as serving_equivalence_range,
)
from perfmodel.equivalence.model import CurveFn as CurveFn
from perfmodel.equivalence.model import CurveOptions as CurveOptions
from perfmodel.equivalence.model import clear_cache as clear_cache
from perfmodel.equivalence.model import model_curve as model_curve
from perfmodel.equivalence.power import chips_for_power as chips_for_power
from perfmodel.equivalence.power import power_equivalence as power_equivalence
from perfmodel.equivalence.power import power_equivalence_range as power_equivalence_range
from perfmodel.equivalence.result import EquivResult as EquivResult
from perfmodel.equivalence.spec import reference_chip as reference_chip
from perfmodel.equivalence.spec import spec_equivalence as spec_equivalence
from perfmodel.equivalence.spec import spec_equivalence_range as spec_equivalence_range
from perfmodel.equivalence.spec import spec_ratio as spec_ratio
from perfmodel.equivalence.spec import spec_result as spec_result
from perfmodel.equivalence.workload import _precision_of as _precision_of  # used by claims
from perfmodel.equivalence.workload import chips_for_h100e as chips_for_h100e
from perfmodel.equivalence.workload import fleet_equivalence as fleet_equivalence
from perfmodel.equivalence.workload import h100e_curve as h100e_curve
from perfmodel.equivalence.workload import h100e_gradient as h100e_gradient
from perfmodel.equivalence.workload import workload_equivalence as workload_equivalence
from perfmodel.equivalence.workload import workload_equivalence_range as workload_equivalence_range

__all__ = [
    "ChipSpec",
    "CurveFn",
    "CurveOptions",
    "DEFAULT_GRID",
    "DEFAULT_PUE",
    "EquivResult",
    "INFERENCE_MODELS",
    "MODES",
    "MONEY_UNITS",
    "MONO_EPS",
    "POWER_UNITS",
    "PUE_RANGE",
    "PUE_SOURCE",
    "REFERENCE_CHIP",
    "REFERENCE_SYSTEM",
    "ScalingCurve",
    "bound_factor",
    "budget_equivalence",
    "budget_equivalence_range",
    "check_trainable",
    "chip_digest",
    "chip_spec",
    "chips_for_h100e",
    "chips_for_power",
    "clear_cache",
    "curve_count",
    "curve_slope",
    "curve_throughput",
    "default_inference_model",
    "equivalent_count",
    "fleet_equivalence",
    "h100_count_for_budget",
    "h100e_curve",
    "h100e_gradient",
    "inference_equivalence",
    "inference_equivalence_range",
    "make_curve",
    "model_curve",
    "power_equivalence",
    "power_equivalence_range",
    "reference_chip",
    "serving_equivalence_range",
    "spec_equivalence",
    "spec_equivalence_range",
    "spec_ratio",
    "spec_result",
    "to_usd",
    "to_w",
    "workload_equivalence",
    "workload_equivalence_range",
]
