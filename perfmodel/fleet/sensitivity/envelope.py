"""Sensitivities of the fleet LP's optimum, by the envelope theorem (no unrolling).

For ``opt(theta) = max { c @ x : A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi }`` with
optimal primal ``x*`` and duals ``y_ub >= 0``, ``y_eq`` (from :func:`perfmodel.fleet.pdhg.solve_lp`
or HiGHS), the Lagrangian::

    L(x, y; lp) = c @ x + y_ub @ (b_ub - A_ub x) + y_eq @ (b_eq - A_eq x)
                  + mu_hi @ (hi - x) + mu_lo @ (x - lo)

with bound multipliers from the reduced cost ``r = c - A_ub^T y_ub - A_eq^T y_eq``
(``mu_hi = max(r, 0)``, ``mu_lo = max(-r, 0)`` where the bound is finite) gives, at the
optimum and with the solution held fixed::

    d opt / d c     = x*                    d opt / d b_ub = y_ub     d opt / d b_eq = y_eq
    d opt / d A_ub  = -y_ub x*^T            d opt / d A_eq = -y_eq x*^T
    d opt / d hi    = mu_hi                 d opt / d lo   = -mu_lo

and for LP data that are a differentiable function of parameters, ``lp = lp_fn(theta)``
(prices, site power ramps, chip specs through the value curves), the chain rule
``d opt / d theta = d L(x*, y*; lp_fn(theta)) / d theta`` (:func:`envelope_grad`).

Degenerate problems: where the optimal dual is not unique, ``opt`` has a kink in ``b``;
``opt`` is concave in ``(b_ub, b_eq)`` and any optimal dual is a supergradient, so the
reported ``y`` lies between the right and left derivatives (``d+ <= y <= d-``) rather
than equal to both. Likewise ``opt`` is convex in ``c`` and ``x*`` is a subgradient.
Use one-sided differences (:func:`finite_difference`) to see both sides.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.highs import HighsLP
from perfmodel.hardware import struct


@struct.dataclass
class LPGradients:
    """Gradient of the optimum with respect to every LP field (same shapes as the LP).

    Units: objective units per unit of the field (e.g. H100e-quarters per W for a power
    row of ``b_ub``; H100e-quarters per (H100e-quarters per unit) = units for ``c``).
    """

    c: jax.Array
    A_ub: jax.Array
    b_ub: jax.Array
    A_eq: jax.Array
    b_eq: jax.Array
    lo: jax.Array
    hi: jax.Array


def _bound_multipliers(lp, x, y_ub, y_eq):
    r = lp.c - y_ub @ lp.A_ub - y_eq @ lp.A_eq
    mu_hi = jnp.where(jnp.isfinite(lp.hi), jnp.maximum(r, 0.0), 0.0)
    mu_lo = jnp.where(jnp.isfinite(lp.lo), jnp.maximum(-r, 0.0), 0.0)
    return mu_hi, mu_lo


def objective_gradients(lp, sol) -> LPGradients:
    """d opt / d (every LP field) at the solution ``sol`` (envelope theorem; see module doc).

    Args:
      lp: the LP that ``sol`` solves (unbatched).
      sol: an :class:`perfmodel.fleet.pdhg.LPSolution` (or any object with x, y_ub, y_eq).

    Returns:
      :class:`LPGradients`; e.g. ``.b_ub[i]`` = objective units gained per row unit of
      extra right-hand side on inequality row i.
    """
    x, y_ub, y_eq = (jnp.asarray(v, jnp.float64) for v in (sol.x, sol.y_ub, sol.y_eq))
    mu_hi, mu_lo = _bound_multipliers(lp, x, y_ub, y_eq)
    return LPGradients(
        c=x,
        A_ub=-jnp.outer(y_ub, x),
        b_ub=y_ub,
        A_eq=-jnp.outer(y_eq, x),
        b_eq=y_eq,
        lo=-mu_lo,
        hi=mu_hi,
    )


def lagrangian(lp, x, y_ub, y_eq, mu_hi=None, mu_lo=None):
    """L(x, y; lp) of the module docstring (objective units); differentiable in ``lp``.

    Bound terms use ``0 * inf = 0`` so infinite bounds contribute nothing.
    """
    if mu_hi is None or mu_lo is None:
        mu_hi, mu_lo = _bound_multipliers(lp, x, y_ub, y_eq)
    fin = lambda v: jnp.where(jnp.isfinite(v), v, 0.0)
    return (
        lp.c @ x
        + y_ub @ (lp.b_ub - lp.A_ub @ x)
        + y_eq @ (lp.b_eq - lp.A_eq @ x)
        + mu_hi @ (fin(lp.hi) - jnp.where(jnp.isfinite(lp.hi), x, 0.0))
        + mu_lo @ (jnp.where(jnp.isfinite(lp.lo), x, 0.0) - fin(lp.lo))
    )


def envelope_grad(lp_fn: Callable, params, sol):
    """d opt / d params for an LP built by a differentiable ``lp_fn(params) -> LP``.

    Holds the optimal ``x*, y*`` (and bound multipliers) fixed and differentiates the
    Lagrangian through ``lp_fn`` (envelope theorem)::

        d opt / d theta = d/d theta [ c(theta) @ x* + y* @ (b(theta) - A(theta) x*) + ... ]

    Args:
      lp_fn: params -> LP, written with jax.numpy (prices, MW ramps, chip specs, ...).
      params: a pytree of float arrays (the point of differentiation).
      sol: the solution of ``lp_fn(params)``.

    Returns:
      a pytree like ``params``: objective units per parameter unit.
    """
    lp0 = lp_fn(params)
    x, y_ub, y_eq = (jnp.asarray(v, jnp.float64) for v in (sol.x, sol.y_ub, sol.y_eq))
    mu_hi, mu_lo = _bound_multipliers(lp0, x, y_ub, y_eq)
    return jax.grad(lambda p: lagrangian(lp_fn(p), x, y_ub, y_eq, mu_hi, mu_lo))(params)


def spec_gradient(x, dc_dspec):
    """Chain rule from objective coefficients to a chip spec: ``d opt / d s = x* @ (dc/ds)``.

    Args:
      x: optimal plan [n] (``d opt / d c``).
      dc_dspec: Jacobian of ``c`` with respect to the spec, shape [n] (one scalar spec)
        or [n, k] (k specs), e.g. ``jax.jacfwd(value_coefficients)(hbm_bytes_per_s)``.

    Returns:
      scalar or [k]: objective units per spec unit (e.g. H100e-quarters per byte/s).
    """
    return jnp.tensordot(jnp.asarray(x, jnp.float64), jnp.asarray(dc_dspec, jnp.float64), axes=1)


def scale_sensitivity(lp, sol, *, field: str = "A_ub", rows=None, cols=None) -> float:
    """d opt / d s when the selected coefficients of ``field`` are multiplied by ``(1 + s)``.

    ``= sum_selected  (d opt / d a_ij) * a_ij`` at s = 0, in objective units per 100%
    change: e.g. with ``rows`` = the budget rows and ``cols`` = one chip's variables it
    answers "what is a 10% lower price of chip k worth" (``-0.1 * result``); with
    ``field="c"`` and ``cols`` = one chip's variables, "what is 10% more throughput per
    chip worth" (``0.1 * result``).

    Args:
      lp, sol: the LP and its solution.
      field: one of "A_ub", "A_eq", "c", "b_ub", "b_eq".
      rows: row names (or a predicate on the name) selecting rows of A_ub/A_eq/b_*.
      cols: variable names (or a predicate on the name) selecting columns of A_*/c.
    """
    g = objective_gradients(lp, sol)
    if field not in ("A_ub", "A_eq", "c", "b_ub", "b_eq"):
        raise ValueError(f"field = {field!r}; allowed: 'A_ub', 'A_eq', 'c', 'b_ub', 'b_eq'")
    m_ub = int(np.shape(lp.b_ub)[-1])
    row_names = tuple(lp.row_names)
    block = row_names[:m_ub] if field in ("A_ub", "b_ub") else row_names[m_ub:]

    def mask(names, sel, size):
        if sel is None:
            return np.ones(size, bool)
        pred = sel if callable(sel) else (lambda nm, s=frozenset(sel): nm in s)
        if len(names) != size:
            raise ValueError(
                f"the LP has {len(names)} names for {size} entries; cannot select by name"
            )
        return np.array([bool(pred(nm)) for nm in names])

    n = int(np.shape(lp.c)[-1])
    if field == "c":
        cm = mask(tuple(lp.var_names), cols, n)
        return float(jnp.sum(jnp.where(cm, g.c * lp.c, 0.0)))
    if field in ("b_ub", "b_eq"):
        size = int(np.shape(getattr(lp, field))[-1])
        rm = mask(block, rows, size)
        return float(jnp.sum(jnp.where(rm, getattr(g, field) * getattr(lp, field), 0.0)))
    size = int(np.shape(getattr(lp, field))[0])
    rm = mask(block, rows, size)
    cm = mask(tuple(lp.var_names), cols, n)
    sel = rm[:, None] & cm[None, :]
    return float(jnp.sum(jnp.where(sel, getattr(g, field) * getattr(lp, field), 0.0)))


def _bump_rhs(lp, kind: str, i: int, delta: float):
    if kind == "ub":
        return lp.replace(b_ub=jnp.asarray(lp.b_ub).at[i].add(delta))
    return lp.replace(b_eq=jnp.asarray(lp.b_eq).at[i].add(delta))


def finite_difference(
    lp, kind: str, i: int, h: float, solve: Callable | None = None
) -> tuple[float, float]:
    """One-sided differences ``(d+, d-)`` of the optimum in the rhs of row i (HiGHS re-solves).

    ``d+ = (opt(b + h e_i) - opt(b)) / h``, ``d- = (opt(b) - opt(b - h e_i)) / h``. For a
    concave ``opt`` (LP maximum in b) every optimal dual lies in ``[d+, d-]`` (up to the
    curvature over h); the two agree where the dual is unique. A side where the bumped
    LP is infeasible (e.g. a power row the existing fleet already fills) has an infinite
    derivative: ``d- = +inf`` when ``b - h`` is infeasible.

    Args:
      lp: the LP; kind: 'ub' or 'eq'; i: row index within its block; h: step (row units).
      solve: ``callable(lp) -> optimum``; default HiGHS (:func:`highs_optimum`).
    """
    if h <= 0:
        raise ValueError(f"finite_difference: h = {h}; must be > 0")
    solve = solve or (lambda p: highs_optimum(p, infeasible_value=-np.inf))
    f0 = solve(lp)
    fp = solve(_bump_rhs(lp, kind, i, h))
    fm = solve(_bump_rhs(lp, kind, i, -h))
    return (fp - f0) / h, (f0 - fm) / h


def highs_optimum(lp, infeasible_value: float | None = None) -> float:
    """max c @ x of the LP by HiGHS (:class:`perfmodel.fleet.highs.HighsLP`).

    Raises ValueError if not optimal, except that an infeasible LP returns
    ``infeasible_value`` when one is given (e.g. ``-inf``, the max over an empty set)."""

    r = HighsLP(lp).solve()
    if r.status == "infeasible" and infeasible_value is not None:
        return float(infeasible_value)
    if r.status != "optimal":
        raise ValueError(f"HiGHS: status {r.status}")
    return r.objective
