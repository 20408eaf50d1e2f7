"""What every equivalence shares: the H100 reference, the count grid, the modes, the
site PUE, money and power units, and the checks of inputs (see :mod:`perfmodel.equivalence`
for the definitions themselves)."""

from __future__ import annotations

import numpy as np

from perfmodel.hardware import PICKS, PRECISION_INDEX, Catalog, load_catalog

REFERENCE_CHIP = "h100_sxm"
REFERENCE_SYSTEM = "dgx_h100"

#: Geometric grid of chip counts: 2^k and 3 * 2^k from 1 to 262,144 (37 points). Counts
#: of this form factor well into data x tensor x pipeline layouts.
DEFAULT_GRID: tuple[int, ...] = tuple(
    sorted({2**k for k in range(19)} | {3 * 2**k for k in range(17)})
)

#: Strictly-increasing slope (in log-log) added to monotone curves so they invert uniquely.
MONO_EPS = 1e-9

#: "job": one job spans all n chips (its global batch fixed by the workload preset);
#: "capacity": n chips may run independent copies of the job on smaller slices
#: (``T_eff(n) = n max_{k<=n} T(k)/k``), the fleet-capacity view.
MODES = ("job", "capacity")

#: Default site PUE (facility power / IT power): an ESTIMATE for a modern AI hall.
#: Sources: Uptime Institute Global Data Center Survey 2023 (industry average ~1.58);
#: Google fleet trailing-twelve-month PUE ~1.10 (2023 environmental report). Liquid-cooled
#: AI halls sit near 1.1-1.2, air-cooled near 1.3-1.5. Range used for low/high: 1.1-1.5.
DEFAULT_PUE = 1.3
PUE_RANGE = (1.1, 1.5)
PUE_SOURCE = (
    "ESTIMATE: default 1.3 (range 1.1-1.5); Uptime Institute Global Data Center "
    "Survey 2023 average ~1.58, Google fleet TTM PUE ~1.10 (2023)"
)

MONEY_UNITS: dict[str, float] = {"usd": 1.0, "kusd": 1e3, "musd": 1e6, "busd": 1e9}
POWER_UNITS: dict[str, float] = {"w": 1.0, "kw": 1e3, "mw": 1e6, "gw": 1e9}


def to_usd(value: float, unit: str = "usd") -> float:
    """``value`` in ``unit`` (usd, kusd, musd, busd) converted to USD."""
    u = unit.lower()
    if u not in MONEY_UNITS:
        raise ValueError(f"money unit {unit!r} must be one of {sorted(MONEY_UNITS)}")
    return float(value) * MONEY_UNITS[u]


def to_w(value: float, unit: str = "w") -> float:
    """``value`` in ``unit`` (w, kw, mw, gw) converted to W."""
    u = unit.lower()
    if u not in POWER_UNITS:
        raise ValueError(f"power unit {unit!r} must be one of {sorted(POWER_UNITS)}")
    return float(value) * POWER_UNITS[u]


def _catalog(catalog: Catalog | None) -> Catalog:
    return load_catalog() if catalog is None else catalog


def _check_precision(precision: str) -> str:
    if precision not in PRECISION_INDEX:
        raise ValueError(f"precision {precision!r} must be one of {tuple(PRECISION_INDEX)}")
    return precision


def _check_pick(pick: str) -> str:
    if pick not in PICKS:
        raise ValueError(f"pick {pick!r} must be one of {PICKS}")
    return pick


def _check_count(name: str, n) -> np.ndarray:
    a = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} = {n!r} must be finite and > 0")
    return a
