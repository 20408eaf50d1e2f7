"""The linear program the fleet planner solves, as a pytree.

``LP`` is the contract between the problem builder (:mod:`perfmodel.fleet.problem`) and the
solvers (:mod:`perfmodel.fleet.pdhg` in JAX, HiGHS through :func:`to_scipy`)::

    maximise   c @ x
    subject to A_ub @ x <= b_ub
               A_eq @ x == b_eq
               lo <= x <= hi

The vectors are dense float64 arrays. ``A_ub`` and ``A_eq`` are ``scipy.sparse.csr_array``
when :func:`perfmodel.fleet.problem.build_lp` runs on concrete data (the default: the fleet
LP is about 0.1% nonzeros) and dense arrays when it is traced (under ``jit``/``vmap``, for
the JAX solvers). :func:`dense` turns the first form into the second, refusing past a
memory limit (:func:`check_memory`). Names and integrality flags are static, so LPs of
the same structure (scenario variants) can be stacked with :func:`stack_lps` and solved
under ``jax.vmap``.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from perfmodel.errors import ResourceError
from perfmodel.hardware import struct

#: A numeric leaf: NumPy as the problem builder makes it, JAX inside ``jit``/``vmap``.
Array = jax.Array | np.ndarray
#: A constraint matrix: sparse (concrete builds) or dense (traced builds, JAX solvers).
Matrix = jax.Array | np.ndarray | sp.csr_array

__all__ = [
    "LP",
    "LPTooLarge",
    "stack_lps",
    "to_scipy",
    "n_vars",
    "n_ub",
    "n_eq",
    "csr",
    "dense",
    "is_sparse",
    "check_memory",
    "memory_limit_bytes",
]

#: Default memory limit of one LP build (bytes); ``$PERFMODEL_LP_MEMORY_GB`` overrides it.
DEFAULT_MEMORY_LIMIT_BYTES = 4 * 2**30


class LPTooLarge(ResourceError):
    """An LP (or its dense form) would need more memory than the limit allows."""


def memory_limit_bytes() -> int:
    """The LP memory limit: ``$PERFMODEL_LP_MEMORY_GB`` (GiB, > 0) or 4 GiB."""
    v = os.environ.get("PERFMODEL_LP_MEMORY_GB")
    if not v:
        return DEFAULT_MEMORY_LIMIT_BYTES
    try:
        gb = float(v)
    except ValueError:
        gb = float("nan")
    if not (gb > 0 and np.isfinite(gb)):
        raise ValueError(f"PERFMODEL_LP_MEMORY_GB = {v!r} must be a number of GiB > 0")
    return int(gb * 2**30)


def check_memory(what: str, sizes: str, need_bytes: float, limit: int | None = None) -> None:
    """Raise :class:`LPTooLarge` (one line: what, sizes, need and limit) past the limit."""
    limit = memory_limit_bytes() if limit is None else limit
    if need_bytes > limit:
        raise LPTooLarge(
            f"{what} ({sizes}) would need {need_bytes / 2**30:.2f} GiB; the limit is "
            f"{limit / 2**30:.2f} GiB (set PERFMODEL_LP_MEMORY_GB to change it)"
        )


@struct.dataclass
class LP:
    """maximise ``c @ x`` s.t. ``A_ub @ x <= b_ub``, ``A_eq @ x == b_eq``, ``lo <= x <= hi``.

    Shapes (unbatched): c, lo, hi: [n]; A_ub: [m_ub, n]; b_ub: [m_ub]; A_eq: [m_eq, n];
    b_eq: [m_eq]. ``hi`` may hold ``inf`` for unbounded variables. Units follow the rows
    (W, USD, chips, H100e) as named in ``row_names``.
    """

    c: Array
    A_ub: Matrix
    b_ub: Array
    A_eq: Matrix
    b_eq: Array
    lo: Array
    hi: Array
    var_names: tuple = struct.field(
        pytree_node=False, default=()
    )  # e.g. "buy[h100_sxm,cortex,2024Q3]"
    row_names: tuple = struct.field(pytree_node=False, default=())  # A_ub rows then A_eq rows
    integer: tuple = struct.field(pytree_node=False, default=())  # per variable: True if integer


def split_row_name(name: str) -> tuple[str, list[str]]:
    """(kind, arguments) of a row name: ``"power_mw[cortex,2024Q3]"`` gives
    ``("power_mw", ["cortex", "2024Q3"])``."""
    kind, _, args = name.partition("[")
    return kind, args.rstrip("]").split(",")


def n_vars(lp: LP) -> int:
    """Number of variables (last axis of ``c``)."""
    return int(np.shape(lp.c)[-1])


def n_ub(lp: LP) -> int:
    """Number of inequality rows."""
    return int(np.shape(lp.b_ub)[-1])


def n_eq(lp: LP) -> int:
    """Number of equality rows."""
    return int(np.shape(lp.b_eq)[-1])


def is_sparse(lp: LP) -> bool:
    """True if either constraint matrix is a scipy.sparse matrix."""
    return sp.issparse(lp.A_ub) or sp.issparse(lp.A_eq)


def csr(a) -> sp.csr_array:
    """``a`` (dense or sparse, [m, n]) as a float64 ``scipy.sparse.csr_array``."""
    if sp.issparse(a):
        return sp.csr_array(a, dtype=np.float64)
    return sp.csr_array(np.asarray(a, dtype=np.float64))


def dense(lp: LP, limit: int | None = None) -> LP:
    """``lp`` with dense NumPy constraint matrices (what the JAX solvers take).

    Raises :class:`LPTooLarge` when the dense matrices would exceed ``limit`` bytes
    (default :func:`memory_limit_bytes`). An LP that is already dense is returned as is.
    """
    if not is_sparse(lp):
        return lp
    n = n_vars(lp)
    m = n_ub(lp) + n_eq(lp)
    check_memory("the dense LP for a JAX solver", f"{m:,} rows x {n:,} columns", 8.0 * m * n, limit)
    return dataclasses.replace(
        lp,
        A_ub=_to_dense(lp.A_ub),
        A_eq=_to_dense(lp.A_eq),
    )


def _to_dense(a) -> Array:
    return np.asarray(a.toarray()) if sp.issparse(a) else a


def stack_lps(lps) -> LP:
    """Stack LPs of identical structure along a new leading axis (for ``jax.vmap``).

    Sparse members are made dense first (:func:`dense`). Raises ValueError if the LPs
    differ in shape or in static fields.
    """
    lps = [dense(lp) for lp in lps]
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

    Returns dict(c, A_ub, b_ub, A_eq, b_eq, bounds) with numpy vectors and CSR matrices; ``bounds`` is a
    list of (lo, hi) with ``None`` for infinite bounds. Empty constraint blocks are None.
    The planner itself calls HiGHS through :mod:`perfmodel.fleet.highs`.
    """
    c = -np.asarray(lp.c, dtype=np.float64)
    A_ub = csr(lp.A_ub)
    A_eq = csr(lp.A_eq)
    lo = np.asarray(lp.lo, dtype=np.float64)
    hi = np.asarray(lp.hi, dtype=np.float64)
    bounds = [
        (None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b))
        for a, b in zip(lo, hi)
    ]
    m_ub, m_eq = n_ub(lp), n_eq(lp)
    return dict(
        c=c,
        A_ub=A_ub if m_ub else None,
        b_ub=np.asarray(lp.b_ub, dtype=np.float64) if m_ub else None,
        A_eq=A_eq if m_eq else None,
        b_eq=np.asarray(lp.b_eq, dtype=np.float64) if m_eq else None,
        bounds=bounds,
    )
