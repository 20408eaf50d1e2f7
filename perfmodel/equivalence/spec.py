"""Spec-sheet equivalence: dense peak at a precision over the H100's."""

from __future__ import annotations

from perfmodel.equivalence.definitions import (
    REFERENCE_CHIP,
    _catalog,
    _check_count,
    _check_pick,
    _check_precision,
)
from perfmodel.equivalence.result import EquivResult, _fig
from perfmodel.hardware import (
    PICKS,
    PRECISION_INDEX,
    PRECISION_KEYS,
    Catalog,
    Chip,
    ChipRecord,
)


def reference_chip(catalog: Catalog | None = None) -> Chip:
    """The H100 SXM at its ``best`` catalog figures."""
    return _catalog(catalog).chip(REFERENCE_CHIP, "best")


def spec_ratio(a: Chip, b: Chip, precision: str = "bf16"):
    """``peak(a, precision) / peak(b, precision)`` (dense FLOP/s ratio, dimensionless)."""
    i = PRECISION_INDEX[_check_precision(precision)]
    return a.peak_flops_per_s[i] / b.peak_flops_per_s[i]


def spec_equivalence(
    chip: Chip | str, precision: str = "bf16", *, pick: str = "best", catalog: Catalog | None = None
):
    """Spec-sheet H100-equivalents of ONE chip: dense peak at ``precision`` / the H100's.

    Args:
      chip: a :class:`Chip` pytree (jit/grad-able) or a catalog key.
      precision: one of ``PRECISIONS``; a chip without that precision uses its fallback
        rate (see :data:`perfmodel.hardware.PRECISION_FALLBACK`).
      pick: catalog pick when ``chip`` is a key.

    Returns:
      Scalar array (dimensionless). Example: B200 (HGX) at bf16: 2250 / 989.4 = 2.274.
    """
    _check_precision(precision)
    cat = _catalog(catalog)
    if isinstance(chip, str):
        chip = cat.chip(chip, _check_pick(pick))
    if precision == "fp4":
        raise ValueError(
            "precision 'fp4' has no spec-sheet H100e: the H100 reference has no FP4 rate"
        )
    return spec_ratio(chip, reference_chip(cat), precision)


def spec_equivalence_range(
    chip_key: str, precision: str = "bf16", n_chips: float = 1.0, catalog: Catalog | None = None
) -> dict[str, float]:
    """Spec-sheet H100e of ``n_chips`` chips with the catalog low/best/high peak rates."""
    cat = _catalog(catalog)
    return {
        p: float(n_chips * spec_equivalence(cat.chip(chip_key, p), precision, catalog=cat))
        for p in PICKS
    }


def spec_result(
    chip_key: str, n_chips: float, precision: str = "bf16", catalog: Catalog | None = None
) -> EquivResult:
    """Spec-sheet H100e of ``n_chips`` with its low/best/high range and assumptions."""
    cat = _catalog(catalog)
    n = float(_check_count("n_chips", n_chips))
    r = spec_equivalence_range(chip_key, _check_precision(precision), n, cat)
    rec = cat.record(chip_key)
    fb = rec.fallbacks().get(precision)
    a = {
        "chip": rec.key,
        "chip_name": rec.display_name,
        "n_chips": n,
        "workload": "none (peak)",
        "precision": precision
        + (f" (chip has no {precision}; runs it at its {fb} rate)" if fb else ""),
        "reference": f"{REFERENCE_CHIP} dense peak at {precision}",
        "scale": "per chip times n; no scaling losses",
        "sources": {
            "chip": _fig(cat, rec.key, _prec_key(precision, rec)),
            "h100": _fig(cat, REFERENCE_CHIP, _prec_key(precision, cat.record(REFERENCE_CHIP))),
        },
    }
    return EquivResult("spec", r["best"], r["low"], r["high"], a)


def _prec_key(precision: str, rec: ChipRecord) -> str:
    """The catalog key of the rate ``rec`` runs ``precision`` at (after the fallback)."""
    q = rec.rate_precision(precision)
    return PRECISION_KEYS[precision if q is None else q]
