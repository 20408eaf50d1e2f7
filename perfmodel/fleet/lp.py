"""The linear program the fleet planner solves, as a pytree.

``LP`` is the contract between the problem builder (:mod:`perfmodel.fleet.problem`) and the
solvers (:mod:`perfmodel.fleet.pdhg` in JAX, HiGHS through :func:`to_scipy`)::

    maximise   c @ x
    subject to A_ub @ x <= b_ub
               A_eq @ x == b_eq
               lo <= x <= hi

All numeric leaves are dense float64 arrays; names and integrality flags are static, so
LPs of the same structure (scenario variants) can be stacked with :func:`stack_lps` and
solved under ``jax.vmap``.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

#: A numeric leaf: NumPy as the problem builder makes it, JAX inside ``jit``/``vmap``.
Array = jax.Array | np.ndarray

__all__ = ["LP", "stack_lps", "to_scipy", "n_vars", "n_ub", "n_eq"]


@flax.struct.dataclass
class LP:
    """maximise ``c @ x`` s.t. ``A_ub @ x <= b_ub``, ``A_eq @ x == b_eq``, ``lo <= x <= hi``.

    Shapes (unbatched): c, lo, hi: [n]; A_ub: [m_ub, n]; b_ub: [m_ub]; A_eq: [m_eq, n];
    b_eq: [m_eq]. ``hi`` may hold ``inf`` for unbounded variables. Units follow the rows
    (W, USD, chips, H100e) as named in ``row_names``.
    """

    c: Array
    A_ub: Array
    b_ub: Array
    A_eq: Array
    b_eq: Array
    lo: Array
    hi: Array
    var_names: tuple = flax.struct.field(
        pytree_node=False, default=()
    )  # e.g. "buy[h100_sxm,cortex,2024Q3]"
    row_names: tuple = flax.struct.field(pytree_node=False, default=())  # A_ub rows then A_eq rows
    integer: tuple = flax.struct.field(
        pytree_node=False, default=()
    )  # per variable: True if integer


def n_vars(lp: LP) -> int:
    """Number of variables (last axis of ``c``)."""
    return int(np.shape(lp.c)[-1])


def n_ub(lp: LP) -> int:
    """Number of inequality rows."""
    return int(np.shape(lp.b_ub)[-1])


def n_eq(lp: LP) -> int:
    """Number of equality rows."""
    return int(np.shape(lp.b_eq)[-1])


def stack_lps(lps) -> LP:
    """Stack LPs of identical structure along a new leading axis (for ``jax.vmap``).

    Raises ValueError if the LPs differ in shape or in static fields.
    """
    lps = list(lps)
    if not lps:
        raise ValueError("stack_lps: need at least one LP, got 0")
    first = lps[0]
    for i, lp in enumerate(lps[1:], start=1):
        for f in ("c", "A_ub", "b_ub", "A_eq", "b_eq", "lo", "hi"):
            if np.shape(getattr(lp, f)) != np.shape(getattr(first, f)):
                raise ValueError(
                    f"stack_lps: lps[{i}].{f} has shape {np.shape(getattr(lp, f))}, "
                    f"lps[0].{f} has {np.shape(getattr(first, f))}; all must match"
                )
        if (lp.var_names, lp.row_names, lp.integer) != (
            first.var_names,
            first.row_names,
            first.integer,
        ):
            raise ValueError(
                f"stack_lps: lps[{i}] has different var_names/row_names/integer than lps[0]"
            )
    return jax.tree_util.tree_map(
        lambda *xs: jnp.stack([jnp.asarray(x, jnp.float64) for x in xs]), *lps
    )


def to_scipy(lp: LP) -> dict:
    """Keyword arguments for ``scipy.optimize.linprog`` (minimise ``-c @ x``).

    Returns dict(c, A_ub, b_ub, A_eq, b_eq, bounds) with numpy arrays; ``bounds`` is a
    list of (lo, hi) with ``None`` for infinite bounds. Empty constraint blocks are None.
    Use :func:`perfmodel.fleet.milp.to_scipy_milp` for ``scipy.optimize.milp``.
    """
    c = -np.asarray(lp.c, dtype=np.float64)
    A_ub = np.asarray(lp.A_ub, dtype=np.float64)
    A_eq = np.asarray(lp.A_eq, dtype=np.float64)
    lo = np.asarray(lp.lo, dtype=np.float64)
    hi = np.asarray(lp.hi, dtype=np.float64)
    bounds = [
        (None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b))
        for a, b in zip(lo, hi)
    ]
    return dict(
        c=c,
        A_ub=A_ub if A_ub.shape[0] else None,
        b_ub=np.asarray(lp.b_ub, dtype=np.float64) if A_ub.shape[0] else None,
        A_eq=A_eq if A_eq.shape[0] else None,
        b_eq=np.asarray(lp.b_eq, dtype=np.float64) if A_eq.shape[0] else None,
        bounds=bounds,
    )
