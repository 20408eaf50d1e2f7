"""A restarted primal-dual hybrid gradient (PDHG / PDLP-style) LP solver in JAX.

Solves the fleet planner's linear program (:class:`perfmodel.fleet.lp.LP`)::

    maximise   c @ x
    subject to A_ub @ x <= b_ub      (dual y_ub >= 0)
               A_eq @ x == b_eq      (dual y_eq free)
               lo <= x <= hi

as the saddle point problem, with ``g = -c``, ``K = [A_ub; A_eq]``, ``q = [b_ub; b_eq]``::

    min_{lo <= x <= hi}  max_{y_ub >= 0, y_eq}   g @ x + y @ (K @ x - q)

The signs are chosen so that ``y`` is the shadow price of the *maximisation*:
``d opt / d b_ub = y_ub`` and ``d opt / d b_eq = y_eq`` (see :mod:`perfmodel.fleet.sensitivity`).

Method (after Applegate et al., "Practical large-scale linear programming using
primal-dual hybrid gradient", NeurIPS 2021 (PDLP); Lu & Yang, "Restarted Halpern PDHG
for linear programming", 2024 (r2HPDHG, cuPDLP+)):

1. Diagonal preconditioning: ``ruiz_iters`` Ruiz equilibration passes (rows and columns
   divided by the square root of their infinity norm) then one Pock-Chambolle pass
   (alpha = 1: divide by the square root of the row/column 1-norms). The result:
   ``K~ = D_r K D_c``, ``x = D_c x~``, ``y = D_r y~``. This is what makes rows in W,
   USD and chip counts (scales 1e0..1e10) solvable by one step size.
2. Bound/objective rescaling: ``q~`` and the bounds are divided by ``1 + ||q~||``,
   ``g~`` by ``1 + ||g~||``.
3. Fixed steps ``tau = eta / w``, ``sigma = eta * w`` with ``eta = 0.95 / ||K~||_2``
   (``||K~||_2`` from power iteration), so ``tau * sigma * ||K~||^2 < 1``. ``w`` is the
   primal weight, updated at each restart to ``exp(0.5 log(dy/dx) + 0.5 log w)``.
4. The PDHG operator ``T``::

       x+ = clip(x - tau (g + K^T y), lo, hi)
       y+ = proj_Y(y + sigma (K (2 x+ - x) - q))

   ``method="halpern"`` (default) iterates the reflected Halpern scheme
   ``z_{k+1} = (k+1)/(k+2) ((1 + rho) T(z_k) - rho z_k) + 1/(k+2) z_0`` (rho = 1) and
   uses ``T(z_k)`` as the candidate; ``method="average"`` iterates ``z_{k+1} = T(z_k)``
   and uses the better of the current and the average iterate (raPDHG). Measured on
   random fleet LPs (benchmarks/pdhg_bench.py): Halpern needs ~1.7x fewer iterations.
5. Every ``check_every`` iterations: restart (to the candidate; it becomes the new
   anchor ``z_0``) when its weighted KKT error fell below 0.2x (sufficient) or 0.8x
   and stopped falling (necessary) of its value at the last restart, or after 36% of
   all iterations so far (artificial), as in cuPDLP.
6. Termination (status 0) when, in the equilibrated space of step 1, the relative
   primal residual ``||viol(K x - q)|| / (1 + ||q||)``, the relative dual residual
   ``||g + K^T y - lambda|| / (1 + ||g||)`` (``lambda`` = reduced costs the bounds
   absorb) and the relative gap ``|P - D| / (1 + |P| + |D|)`` are all ``<= tol``.
   Status 2 (primal infeasible suspected) / 3 (dual infeasible, i.e. unbounded,
   suspected) when the iterate difference over a check block is a Farkas / recession
   ray to ``infeas_tol`` at two consecutive checks; status 1 at the iteration limit.

Everything is one ``jax.lax.while_loop``, so :func:`solve_lp` is jit-compiled, runs the
same traced or with constant data, and :func:`solve_lp_batch` vmaps it over a leading
scenario axis (optionally in compacting rounds, so that a batch does not run at full
width until its slowest member finishes). Sensitivities come from the duals by the
envelope theorem (:mod:`perfmodel.fleet.sensitivity`), not by unrolling the loop.

With the default ``tol = 1e-6`` the objective is within ~1e-6 (median) of HiGHS on
fleet-like LPs; use ``tol = 1e-8`` or smaller when individual duals matter (their
relative error is larger than the objective's).

Example::

    >>> from perfmodel.fleet.lp import LP
    >>> import jax.numpy as jnp
    >>> lp = LP(c=jnp.array([3., 2.]), A_ub=jnp.array([[1., 1.], [1., 3.]]),
    ...         b_ub=jnp.array([4., 9.]), A_eq=jnp.zeros((0, 2)), b_eq=jnp.zeros(0),
    ...         lo=jnp.zeros(2), hi=jnp.array([3., jnp.inf]))
    >>> sol = solve_lp(lp)
    >>> round(float(sol.objective), 4), int(sol.status)
    (11.0, 0)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import flax.struct
import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.lp import dense

__all__ = [
    "LPSolution",
    "SolverOptions",
    "solve_lp",
    "solve_lp_batch",
    "STATUS_NAMES",
    "OPTIMAL",
    "ITERATION_LIMIT",
    "PRIMAL_INFEASIBLE",
    "DUAL_INFEASIBLE",
]

OPTIMAL, ITERATION_LIMIT, PRIMAL_INFEASIBLE, DUAL_INFEASIBLE = 0, 1, 2, 3
STATUS_NAMES = {
    OPTIMAL: "optimal",
    ITERATION_LIMIT: "iteration limit",
    PRIMAL_INFEASIBLE: "primal infeasible (suspected)",
    DUAL_INFEASIBLE: "dual infeasible / unbounded (suspected)",
}
_RUNNING = -1


@flax.struct.dataclass
class LPSolution:
    """Result of :func:`solve_lp` (leaves gain a leading axis under :func:`solve_lp_batch`).

    Attributes:
      x: primal solution [n], in the LP's variable units.
      y_ub: duals of ``A_ub x <= b_ub`` [m_ub], >= 0: objective units per row unit
        (``d opt / d b_ub``).
      y_eq: duals of ``A_eq x == b_eq`` [m_eq] (``d opt / d b_eq``).
      objective: ``c @ x`` (the maximised objective, objective units).
      primal_residual: ``||viol(K x - q)|| / (1 + ||q||)`` in the equilibrated space.
      dual_residual: ``||g + K^T y - lambda|| / (1 + ||g||)`` in the equilibrated space.
      rel_gap: ``|P - D| / (1 + |P| + |D|)``, P/D primal/dual objective.
      iterations: PDHG iterations run (int).
      primal_weight: the solver's final primal weight (pass the solution back as
        ``warm_start`` to start a related LP from here).
      status: 0 optimal within tol, 1 iteration limit, 2 primal infeasible suspected,
        3 dual infeasible (unbounded) suspected. See :data:`STATUS_NAMES`.
    """

    x: jax.Array
    y_ub: jax.Array
    y_eq: jax.Array
    objective: jax.Array
    primal_residual: jax.Array
    dual_residual: jax.Array
    rel_gap: jax.Array
    iterations: jax.Array
    status: jax.Array
    primal_weight: jax.Array


@flax.struct.dataclass
class SolverOptions:
    """Solver settings. Tolerances, limits and steps are pytree leaves (changing them does
    not recompile); the method and loop sizes are static (part of the jit cache key).

    Attributes:
      iters: iteration limit (PDHG steps).
      tol: relative tolerance on primal residual, dual residual and gap.
      infeas_tol: tolerance of the infeasibility certificates.
      step_safety: ``eta = step_safety / ||K||_2``.
      reflection: Halpern reflection rho in [0, 1] (1 = fully reflected ``2T - I``).
      method: "halpern" (reflected restarted Halpern PDHG, r2HPDHG) or "average"
        (restarted average PDHG, raPDHG).
      check_every: PDHG steps between restart / termination checks.
      ruiz_iters: Ruiz equilibration passes.
      power_iters: power-iteration steps for ``||K||_2``.
    """

    iters: int = 100_000
    tol: float = 1e-6
    infeas_tol: float = 1e-8
    step_safety: float = 0.95
    reflection: float = 1.0
    method: str = flax.struct.field(pytree_node=False, default="halpern")
    check_every: int = flax.struct.field(pytree_node=False, default=64)
    ruiz_iters: int = flax.struct.field(pytree_node=False, default=12)
    power_iters: int = flax.struct.field(pytree_node=False, default=64)


# --------------------------------------------------------------------------- validation

_FIELDS = ("c", "A_ub", "b_ub", "A_eq", "b_eq", "lo", "hi")


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_shapes(lp, batched: bool) -> tuple[int, int, int]:
    lead = 1 if batched else 0
    shapes = {f: tuple(np.shape(getattr(lp, f))) for f in _FIELDS}
    for f, want_nd in (
        ("c", 1),
        ("A_ub", 2),
        ("b_ub", 1),
        ("A_eq", 2),
        ("b_eq", 1),
        ("lo", 1),
        ("hi", 1),
    ):
        if len(shapes[f]) != want_nd + lead:
            raise ValueError(
                f"LP.{f} has shape {shapes[f]}; expected {want_nd + lead} dimensions"
                + (" (leading batch axis)" if batched else "")
            )
    n = shapes["c"][-1]
    m_ub, m_eq = shapes["b_ub"][-1], shapes["b_eq"][-1]
    want = {"A_ub": (m_ub, n), "A_eq": (m_eq, n), "lo": (n,), "hi": (n,)}
    for f, s in want.items():
        if shapes[f][lead:] != s:
            raise ValueError(
                f"LP.{f} has shape {shapes[f][lead:]}; expected {s} "
                f"(n={n} variables, m_ub={m_ub}, m_eq={m_eq})"
            )
    if batched:
        bs = {shapes[f][0] for f in _FIELDS}
        if len(bs) != 1:
            raise ValueError(f"stacked LP fields disagree on the batch size: {sorted(bs)}")
    if n == 0:
        raise ValueError("LP.c has 0 variables; need at least 1")
    return n, m_ub, m_eq


@jax.jit
def _all_finite(a):
    return jnp.all(jnp.isfinite(a))


def _finite(v) -> bool:
    """All entries finite (v concrete); jitted for large arrays, evaluated now even while
    an outer function is being traced."""
    if isinstance(v, np.ndarray) or np.isscalar(v):
        return bool(np.all(np.isfinite(v)))
    with jax.ensure_compile_time_eval():
        return bool(_all_finite(jnp.asarray(v)))


def _check_values(lp) -> None:
    """Value checks on concrete data (skipped for traced inputs)."""
    import scipy.sparse as sp

    for f in ("c", "A_ub", "b_ub", "A_eq", "b_eq"):
        v = getattr(lp, f)
        if sp.issparse(v):  # the nonzeros are the values to check
            v = np.asarray(v.toarray() if not np.all(np.isfinite(v.data)) else v.data)
        if _is_concrete(v) and np.size(v) and not _finite(v):
            a = np.asarray(v, dtype=np.float64)
            bad = np.argwhere(~np.isfinite(a))[0]
            raise ValueError(f"LP.{f}{[int(i) for i in bad]} = {a[tuple(bad)]}; must be finite")
    lo, hi = lp.lo, lp.hi
    if _is_concrete(lo) and _is_concrete(hi):
        lo_a, hi_a = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if np.any(np.isnan(lo_a)) or np.any(np.isnan(hi_a)):
            raise ValueError("LP.lo / LP.hi contain NaN; bounds must be numbers or +-inf")
        if np.any(lo_a == np.inf):
            i = int(np.argmax(lo_a == np.inf))
            raise ValueError(f"LP.lo[{i}] = inf; a lower bound must be < inf")
        if np.any(hi_a == -np.inf):
            i = int(np.argmax(hi_a == -np.inf))
            raise ValueError(f"LP.hi[{i}] = -inf; an upper bound must be > -inf")
        bad = lo_a > hi_a
        if np.any(bad):
            idx = np.argwhere(bad)[0]
            raise ValueError(
                f"LP.lo{[int(i) for i in idx]} = {lo_a[tuple(idx)]} > LP.hi{[int(i) for i in idx]} = "
                f"{hi_a[tuple(idx)]}; need lo <= hi"
            )


def _options(opts: dict) -> SolverOptions:
    if "tol" in opts and not (0.0 < float(opts["tol"]) < 1.0):
        raise ValueError(f"tol = {opts['tol']}; allowed range (0, 1)")
    if "iters" in opts and int(opts["iters"]) < 1:
        raise ValueError(f"iters = {opts['iters']}; must be >= 1")
    if "check_every" in opts and int(opts["check_every"]) < 1:
        raise ValueError(f"check_every = {opts['check_every']}; must be >= 1")
    if "step_safety" in opts and not (0.0 < float(opts["step_safety"]) < 1.0):
        raise ValueError(f"step_safety = {opts['step_safety']}; allowed range (0, 1)")
    if "method" in opts and opts["method"] not in ("halpern", "average"):
        raise ValueError(f"method = {opts['method']!r}; allowed: 'halpern', 'average'")
    if "reflection" in opts and not (0.0 <= float(opts["reflection"]) <= 1.0):
        raise ValueError(f"reflection = {opts['reflection']}; allowed range [0, 1]")
    known = set(SolverOptions.__dataclass_fields__)
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"unknown solver option(s) {sorted(unknown)}; known: {sorted(known)}")
    o = SolverOptions(**opts)
    return dataclasses.replace(
        o,
        iters=int(o.iters),
        tol=float(o.tol),
        infeas_tol=float(o.infeas_tol),
        step_safety=float(o.step_safety),
        reflection=float(o.reflection),
    )


# --------------------------------------------------------------------------- preconditioning


def _safe_inv_sqrt(v):
    return jnp.where(v > 0, 1.0 / jnp.sqrt(jnp.where(v > 0, v, 1.0)), 1.0)


def _precondition(K, ruiz_iters: int):
    """Ruiz (inf-norm) then Pock-Chambolle (alpha=1) diagonal scaling.

    Returns (K~, d_r, d_c) with ``K~ = diag(d_r) K diag(d_c)``.
    """
    m, n = K.shape
    d_r = jnp.ones((m,), K.dtype)
    d_c = jnp.ones((n,), K.dtype)

    def ruiz(_, carry):
        Kt, dr, dc = carry
        absK = jnp.abs(Kt)
        r = _safe_inv_sqrt(jnp.max(absK, axis=1, initial=0.0))
        c = _safe_inv_sqrt(jnp.max(absK, axis=0, initial=0.0))
        return Kt * r[:, None] * c[None, :], dr * r, dc * c

    K, d_r, d_c = jax.lax.fori_loop(0, ruiz_iters, ruiz, (K, d_r, d_c))
    absK = jnp.abs(K)
    r = _safe_inv_sqrt(jnp.sum(absK, axis=1))
    c = _safe_inv_sqrt(jnp.sum(absK, axis=0))
    return K * r[:, None] * c[None, :], d_r * r, d_c * c


def _spectral_norm(K, iters: int):
    """Largest singular value of K by power iteration on K^T K (a slight underestimate)."""
    n = K.shape[1]
    v0 = jnp.ones((n,), K.dtype) / math.sqrt(n) + 1e-3 * jnp.cos(jnp.arange(n, dtype=K.dtype))

    def body(_, v):
        w = (K @ v) @ K
        return w / jnp.maximum(jnp.linalg.norm(w), 1e-300)

    v = jax.lax.fori_loop(0, iters, body, v0 / jnp.linalg.norm(v0))
    return jnp.linalg.norm(K @ v)


# --------------------------------------------------------------------------- residuals


def _zero_inf(v):
    return jnp.where(jnp.isfinite(v), v, 0.0)


def _primal_viol(Kx_minus_q, is_ub):
    return jnp.where(is_ub, jnp.maximum(Kx_minus_q, 0.0), Kx_minus_q)


def _reduced_cost_split(r, lo, hi):
    """lambda = part of the reduced cost r the bounds absorb; returns (r - lambda, lambda)."""
    lam = jnp.where(jnp.isfinite(lo), jnp.maximum(r, 0.0), 0.0) + jnp.where(
        jnp.isfinite(hi), jnp.minimum(r, 0.0), 0.0
    )
    return r - lam, lam


def _box_term(lam, lo, hi):
    """min over the box of lambda @ x, with 0 * inf = 0."""
    return jnp.sum(jnp.maximum(lam, 0.0) * _zero_inf(lo) + jnp.minimum(lam, 0.0) * _zero_inf(hi))


def _errors(x, y, K, g, q, lo, hi, is_ub):
    """Absolute (primal residual, dual residual, primal obj, dual obj) of the min problem."""
    Kx = K @ x
    pres = jnp.linalg.norm(_primal_viol(Kx - q, is_ub))
    r = g + y @ K
    dres_vec, lam = _reduced_cost_split(r, lo, hi)
    dres = jnp.linalg.norm(dres_vec)
    p_obj = g @ x
    d_obj = -q @ y + _box_term(lam, lo, hi)
    return pres, dres, p_obj, d_obj


def _primal_infeasible_ray(dy, K, q, lo, hi, is_ub, tol):
    """Is dy (a dual direction) a Farkas certificate that K x <= / == q has no x in the box?"""
    dy = jnp.where(is_ub, jnp.maximum(dy, 0.0), dy)
    scale = jnp.max(jnp.abs(dy), initial=0.0)
    dy = dy / jnp.where(scale > 0, scale, 1.0)
    r = dy @ K
    res, lam = _reduced_cost_split(r, lo, hi)
    gain = -q @ dy + _box_term(lam, lo, hi)
    return (scale > 0) & (gain > 0) & (jnp.linalg.norm(res) <= tol * gain)


def _dual_infeasible_ray(dx, K, g, lo, hi, is_ub, tol):
    """Is dx a recession direction of the feasible set along which g @ x -> -inf?"""
    scale = jnp.max(jnp.abs(dx), initial=0.0)
    dx = dx / jnp.where(scale > 0, scale, 1.0)
    box_viol = jnp.where(jnp.isfinite(lo), jnp.minimum(dx, 0.0), 0.0) + jnp.where(
        jnp.isfinite(hi), jnp.maximum(dx, 0.0), 0.0
    )
    dx = dx - box_viol
    gain = -(g @ dx)
    viol = jnp.linalg.norm(_primal_viol(K @ dx, is_ub))
    return (scale > 0) & (gain > 0) & (viol <= tol * gain)


# --------------------------------------------------------------------------- the solver


@flax.struct.dataclass
class _Op:
    """The preconditioned constraint matrix as an operator: ``op @ x`` and ``y @ op``.

    Plain: ``Kt`` [m, n]. Structured (a batch whose members differ only in a few rows,
    e.g. price draws that touch the capex rows): ``Kt`` is shared across the batch (not
    vmapped, so the batch's products are matrix-matrix), and each member carries ``Kd``
    [r, n], its rows ``idx`` minus the shared ones.
    """

    Kt: jax.Array
    Kd: jax.Array
    idx: jax.Array  # [r, m] one-hot selection of the differing rows (a matmul, not a scatter)
    structured: bool = flax.struct.field(pytree_node=False, default=False)

    @property
    def shape(self):
        return self.Kt.shape

    @property
    def dtype(self):
        return self.Kt.dtype

    def __matmul__(self, x):
        out = self.Kt @ x
        return out + (self.Kd @ x) @ self.idx if self.structured else out

    def __rmatmul__(self, y):
        out = y @ self.Kt
        return out + (self.idx @ y) @ self.Kd if self.structured else out


def _plain_op(Kt):
    n = Kt.shape[1]
    return _Op(Kt=Kt, Kd=jnp.zeros((0, n), Kt.dtype), idx=jnp.zeros((0, Kt.shape[0]), Kt.dtype))


@flax.struct.dataclass
class _Problem:
    """One LP after preconditioning (hat space: the solver's; see the module docstring)."""

    Kt: _Op  # D_r K D_c
    gh: jax.Array
    qh: jax.Array
    loh: jax.Array
    hih: jax.Array
    is_ub: jax.Array  # bool [m]
    sb: jax.Array  # 1 + ||q~||
    sc: jax.Array  # 1 + ||g~||
    eta: jax.Array
    d_r: jax.Array
    d_c: jax.Array
    c: jax.Array
    lo: jax.Array
    hi: jax.Array
    m_ub: int = flax.struct.field(pytree_node=False, default=0)


@flax.struct.dataclass
class _State:
    x: jax.Array  # iterate z = (x, y)
    y: jax.Array
    x_sum: jax.Array  # running sums for the average ("average" method)
    y_sum: jax.Array
    n_avg: jax.Array  # steps since restart (Halpern counter k for "halpern")
    x_anchor: jax.Array  # restart point: Halpern anchor z0, and primal-weight reference
    y_anchor: jax.Array
    kkt_last: jax.Array  # KKT error at the last restart
    kkt_prev: jax.Array  # candidate KKT error at the previous check
    w: jax.Array  # primal weight
    since_restart: jax.Array
    it: jax.Array
    status: jax.Array
    infeas_p: jax.Array  # consecutive primal-infeasibility certificates
    infeas_d: jax.Array
    x_out: jax.Array  # best candidate at the last check
    y_out: jax.Array
    errs: jax.Array  # its relative (primal, dual, gap)


def _hat_errors(x, y, P: _Problem):
    """(weighted-KKT pieces, relative errors) of (x^, y^), sharing one K x and one K^T y.

    The equilibrated (tilde) space errors follow from the hat space ones exactly:
    ``pres~ = sb pres^``, ``dres~ = sc dres^``, ``obj~ = sb sc obj^`` and ``sb = 1 + ||q~||``.
    """
    pres, dres, p_obj, d_obj = _errors(x, y, P.Kt, P.gh, P.qh, P.loh, P.hih, P.is_ub)
    s = P.sb * P.sc
    rel = jnp.stack(
        [pres, dres, s * jnp.abs(p_obj - d_obj) / (1.0 + s * (jnp.abs(p_obj) + jnp.abs(d_obj)))]
    )
    return (pres, dres, p_obj - d_obj), rel


def _kkt_from(pieces, w):
    pres, dres, gap = pieces
    return jnp.sqrt(w**2 * pres**2 + dres**2 / w**2 + gap**2)


def _setup(c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts: SolverOptions):
    f64 = jnp.float64
    c, A_ub, b_ub, A_eq, b_eq, lo, hi = (
        jnp.asarray(a, f64) for a in (c, A_ub, b_ub, A_eq, b_eq, lo, hi)
    )
    m_ub = A_ub.shape[0]
    K0 = jnp.concatenate([A_ub, A_eq], axis=0)
    # 1. diagonal preconditioning (equilibrated space: tilde)
    Kt, d_r, d_c = _precondition(K0, opts.ruiz_iters)
    return _setup_tail(
        c, b_ub, b_eq, lo, hi, _plain_op(Kt), d_r, d_c, m_ub, x_init, y_init, w_init, opts
    )


def _setup_structured(
    c,
    K_rows,
    b_ub,
    b_eq,
    lo,
    hi,
    x_init,
    y_init,
    w_init,
    Kt_ref,
    d_r,
    d_c,
    idx,
    opts: SolverOptions,
):
    """One member of a structured batch: the shared preconditioner (d_r, d_c) and matrix
    Kt_ref come from a reference member; ``K_rows`` are this member's rows ``idx``."""
    f64 = jnp.float64
    c, K_rows, b_ub, b_eq, lo, hi = (jnp.asarray(a, f64) for a in (c, K_rows, b_ub, b_eq, lo, hi))
    Kd = d_r[idx][:, None] * K_rows * d_c[None, :] - Kt_ref[idx]
    onehot = (idx[:, None] == jnp.arange(Kt_ref.shape[0])[None, :]).astype(Kt_ref.dtype)
    op = _Op(Kt=Kt_ref, Kd=Kd, idx=onehot, structured=True)
    return _setup_tail(
        c, b_ub, b_eq, lo, hi, op, d_r, d_c, b_ub.shape[0], x_init, y_init, w_init, opts
    )


def _setup_tail(
    c, b_ub, b_eq, lo, hi, op: _Op, d_r, d_c, m_ub: int, x_init, y_init, w_init, opts: SolverOptions
):
    f64 = jnp.float64
    m_eq = b_eq.shape[0]
    q0 = jnp.concatenate([b_ub, b_eq])
    is_ub = jnp.arange(m_ub + m_eq) < m_ub
    gt, qt = -c * d_c, q0 * d_r
    # 2. bound / objective rescaling (solver space: hat)
    sb, sc = 1.0 + jnp.linalg.norm(qt), 1.0 + jnp.linalg.norm(gt)
    qh, gh, loh, hih = qt / sb, gt / sc, lo / d_c / sb, hi / d_c / sb
    # 3. steps and the initial primal weight
    k_norm = _spectral_norm(op, opts.power_iters)
    eta = opts.step_safety / jnp.where(k_norm > 1e-12, k_norm, 1.0)
    qh_n, gh_n = jnp.linalg.norm(qh), jnp.linalg.norm(gh)
    w0 = jnp.where((qh_n > 1e-10) & (gh_n > 1e-10), gh_n / jnp.maximum(qh_n, 1e-300), 1.0)
    w_init = jnp.asarray(w_init, f64)
    w0 = jnp.where(jnp.isfinite(w_init) & (w_init > 0), w_init, w0)
    P = _Problem(
        Kt=op,
        gh=gh,
        qh=qh,
        loh=loh,
        hih=hih,
        is_ub=is_ub,
        sb=sb,
        sc=sc,
        eta=eta,
        d_r=d_r,
        d_c=d_c,
        c=c,
        lo=lo,
        hi=hi,
        m_ub=m_ub,
    )
    # the start point (zero, or a warm start given in the LP's own units) in the hat space
    x0 = jnp.clip(jnp.asarray(x_init, f64) / (d_c * sb), loh, hih)
    y0 = jnp.asarray(y_init, f64) / (d_r * sc)
    y0 = jnp.where(is_ub, jnp.maximum(y0, 0.0), y0)
    pieces, rel = _hat_errors(x0, y0, P)
    S = _State(
        x=x0,
        y=y0,
        x_sum=jnp.zeros_like(x0),
        y_sum=jnp.zeros_like(y0),
        n_avg=jnp.zeros((), f64),
        x_anchor=x0,
        y_anchor=y0,
        kkt_last=_kkt_from(pieces, w0),
        kkt_prev=jnp.asarray(jnp.inf, f64),
        w=w0,
        since_restart=jnp.zeros((), jnp.int32),
        it=jnp.zeros((), jnp.int32),
        status=jnp.asarray(_RUNNING, jnp.int32),
        infeas_p=jnp.zeros((), jnp.int32),
        infeas_d=jnp.zeros((), jnp.int32),
        x_out=x0,
        y_out=y0,
        errs=rel,
    )
    return P, S


def _block(P: _Problem, s: _State, opts: SolverOptions) -> _State:
    """``check_every`` PDHG steps, then the termination, infeasibility and restart checks."""
    halpern = opts.method == "halpern"
    rho = opts.reflection

    def proj_y(y):
        return jnp.where(P.is_ub, jnp.maximum(y, 0.0), y)

    def T(x, y, w):  # one PDHG step
        tau, sigma = P.eta / w, P.eta * w
        x_t = jnp.clip(x - tau * (P.gh + y @ P.Kt), P.loh, P.hih)
        y_t = proj_y(y + sigma * (P.Kt @ (2.0 * x_t - x) - P.qh))
        return x_t, y_t

    def step_avg(_, carry):
        x, y, x_sum, y_sum, k, _xt, _yt = carry
        x_t, y_t = T(x, y, s.w)
        return x_t, y_t, x_sum + x_t, y_sum + y_t, k + 1.0, x_t, y_t

    def step_halpern(_, carry):
        x, y, x_sum, y_sum, k, _xt, _yt = carry
        x_t, y_t = T(x, y, s.w)
        a = (k + 1.0) / (k + 2.0)
        x_n = a * ((1.0 + rho) * x_t - rho * x) + (1.0 - a) * s.x_anchor
        y_n = a * ((1.0 + rho) * y_t - rho * y) + (1.0 - a) * s.y_anchor
        return x_n, y_n, x_sum, y_sum, k + 1.0, x_t, y_t

    x0, y0 = s.x, s.y
    x, y, x_sum, y_sum, k, x_t, y_t = jax.lax.fori_loop(
        0,
        opts.check_every,
        step_halpern if halpern else step_avg,
        (s.x, s.y, s.x_sum, s.y_sum, s.n_avg, s.x, s.y),
    )
    it = s.it + opts.check_every
    since = s.since_restart + opts.check_every

    # candidates: the last PDHG output T(z) (Halpern) / the current and average iterates
    if halpern:
        pieces, e_c = _hat_errors(x_t, y_t, P)
        x_c, y_c, k_c = x_t, y_t, _kkt_from(pieces, s.w)
    else:
        x_avg, y_avg = x_sum / k, y_sum / k
        p_cur, e_cur = _hat_errors(x, y, P)
        p_avg, e_avg = _hat_errors(x_avg, y_avg, P)
        k_cur, k_avg = _kkt_from(p_cur, s.w), _kkt_from(p_avg, s.w)
        use_avg = k_avg < k_cur
        x_c = jnp.where(use_avg, x_avg, x)
        y_c = jnp.where(use_avg, y_avg, y)
        e_c = jnp.where(use_avg, e_avg, e_cur)
        k_c = jnp.where(use_avg, k_avg, k_cur)
    converged = jnp.all(e_c <= opts.tol)

    # infeasibility certificates from the displacement over this block
    p_ray = _primal_infeasible_ray(y - y0, P.Kt, P.qh, P.loh, P.hih, P.is_ub, opts.infeas_tol)
    d_ray = _dual_infeasible_ray(x - x0, P.Kt, P.gh, P.loh, P.hih, P.is_ub, opts.infeas_tol)
    infeas_p = jnp.where(p_ray, s.infeas_p + 1, 0)
    infeas_d = jnp.where(d_ray, s.infeas_d + 1, 0)
    status = jnp.where(
        converged,
        OPTIMAL,
        jnp.where(
            infeas_p >= 2,
            PRIMAL_INFEASIBLE,
            jnp.where(
                infeas_d >= 2,
                DUAL_INFEASIBLE,
                jnp.where(it >= opts.iters, ITERATION_LIMIT, _RUNNING),
            ),
        ),
    ).astype(jnp.int32)

    # restart (cuPDLP's KKT criteria) and primal weight update
    restart = (
        (k_c <= 0.2 * s.kkt_last)
        | ((k_c <= 0.8 * s.kkt_last) & (k_c > s.kkt_prev))
        | (since >= 0.36 * it)
    )
    dxn = jnp.linalg.norm(x_c - s.x_anchor)
    dyn = jnp.linalg.norm(y_c - s.y_anchor)
    w_new = jnp.where(
        (dxn > 1e-10) & (dyn > 1e-10),
        jnp.exp(
            0.5 * jnp.log(jnp.maximum(dyn, 1e-300) / jnp.maximum(dxn, 1e-300)) + 0.5 * jnp.log(s.w)
        ),
        s.w,
    )
    w_new = jnp.clip(w_new, 1e-6, 1e6)

    def pick(a_restart, a_keep):
        return jnp.where(restart, a_restart, a_keep)

    return _State(
        x=pick(x_c, x),
        y=pick(y_c, y),
        x_sum=pick(jnp.zeros_like(x_sum), x_sum),
        y_sum=pick(jnp.zeros_like(y_sum), y_sum),
        n_avg=pick(jnp.zeros_like(k), k),
        x_anchor=pick(x_c, s.x_anchor),
        y_anchor=pick(y_c, s.y_anchor),
        kkt_last=pick(k_c, s.kkt_last),
        kkt_prev=pick(jnp.inf, k_c),
        w=pick(w_new, s.w),
        since_restart=pick(jnp.zeros_like(since), since),
        it=it,
        status=status,
        infeas_p=infeas_p,
        infeas_d=infeas_d,
        x_out=x_c,
        y_out=y_c,
        errs=e_c,
    )


def _run(P: _Problem, s: _State, it_cap, opts: SolverOptions) -> _State:
    """Check blocks until stopped or ``it >= it_cap`` (``it_cap`` may be traced)."""
    return jax.lax.while_loop(
        lambda t: (t.status == _RUNNING) & (t.it < it_cap), lambda t: _block(P, t, opts), s
    )


def _finish(P: _Problem, s: _State) -> LPSolution:
    # back to the original space: x = D_c x~ = D_c sb x^ ;  y = D_r y~ = D_r sc y^
    x = jnp.clip(P.d_c * P.sb * s.x_out, P.lo, P.hi)
    y = P.d_r * P.sc * s.y_out
    return LPSolution(
        x=x,
        y_ub=y[: P.m_ub],
        y_eq=y[P.m_ub :],
        objective=P.c @ x,
        primal_residual=s.errs[0],
        dual_residual=s.errs[1],
        rel_gap=s.errs[2],
        iterations=s.it,
        status=s.status,
        primal_weight=s.w,
    )


def _solve_one(
    c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts: SolverOptions
) -> LPSolution:
    P, S = _setup(c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts)
    return _finish(P, _run(P, S, opts.iters, opts))


@jax.jit
def _solve_jit(c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts):
    return _solve_one(c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts)


@jax.jit
def _solve_batch_jit(c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts):
    return jax.vmap(functools.partial(_solve_one, opts=opts))(
        c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init
    )


_T = TypeVar("_T")


def vmap_axes(cls: Callable[..., _T], **axes: Any) -> _T:
    """A ``cls`` pytree whose leaves are ``jax.vmap`` axes (an int, or None for shared)
    in place of the arrays its fields are typed as (static fields as usual)."""
    return cls(**axes)


def _problem_axes(m_ub: int, structured: bool) -> _Problem:
    """vmap axes of a batch's _Problem: shared (None) matrix and scalings when structured."""
    sh = None if structured else 0
    return vmap_axes(
        _Problem,
        Kt=vmap_axes(_Op, Kt=sh, Kd=0, idx=sh, structured=structured),
        gh=0,
        qh=0,
        loh=0,
        hih=0,
        is_ub=0,
        sb=0,
        sc=0,
        eta=0,
        d_r=sh,
        d_c=sh,
        c=0,
        lo=0,
        hi=0,
        m_ub=m_ub,
    )


@functools.partial(jax.jit, static_argnames=("axes",))
def _setup_batch(c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init, opts, axes):
    return jax.vmap(functools.partial(_setup, opts=opts), out_axes=(axes, 0))(
        c, A_ub, b_ub, A_eq, b_eq, lo, hi, x_init, y_init, w_init
    )


@functools.partial(jax.jit, static_argnames=("axes",))
def _setup_batch_structured(
    c, K_rows, b_ub, b_eq, lo, hi, x_init, y_init, w_init, K_ref, idx, opts, axes
):
    Kt_ref, d_r, d_c = _precondition(K_ref, opts.ruiz_iters)
    f = functools.partial(_setup_structured, opts=opts)
    return jax.vmap(f, in_axes=(0,) * 9 + (None,) * 4, out_axes=(axes, 0))(
        c, K_rows, b_ub, b_eq, lo, hi, x_init, y_init, w_init, Kt_ref, d_r, d_c, idx
    )


@functools.partial(jax.jit, static_argnames=("axes",))
def _run_batch(P, S, it_cap, opts, axes):
    return jax.vmap(functools.partial(_run, opts=opts), in_axes=(axes, 0, None))(P, S, it_cap)


@functools.partial(jax.jit, static_argnames=("axes",))
def _finish_batch(P, S, axes):
    return jax.vmap(_finish, in_axes=(axes, 0))(P, S)


def _map_batched(f, axes, tree):
    return jax.tree_util.tree_map(
        lambda ax, a: a if ax is None else f(a), axes, tree, is_leaf=lambda v: v is None
    )


@functools.partial(jax.jit, static_argnames=("axes",))
def _take(P, S, idx, axes):
    take = lambda a: a[idx]  # noqa: E731
    return _map_batched(take, axes, P), jax.tree_util.tree_map(take, S)


@functools.partial(jax.jit, donate_argnums=(0,))
def _put(tree, sub, idx, n_real):
    """Write the first ``n_real`` members of a sub-batch back into ``tree`` (donated: the
    caller must use the returned tree); padding entries (duplicates of a real index) are
    dropped, so they cannot overwrite a real member's result. Shared with the simplex
    driver (:mod:`perfmodel.fleet.simplex`)."""
    keep = jnp.arange(idx.shape[0]) < n_real
    dest = jnp.where(
        keep, idx, jax.tree_util.tree_leaves(tree)[0].shape[0]
    )  # out of range: dropped

    def put(a, b):
        return a.at[dest].set(b, mode="drop")

    return jax.tree_util.tree_map(put, tree, sub)


def _bucket(k: int, batch: int) -> int:
    """Padded sub-batch size: 16 * 4**j >= k (at most the full batch): few compiles."""
    size = 16
    while size < k:
        size *= 4
    return min(batch, size)


def _varying_rows(data) -> np.ndarray:
    """Indices of constraint rows whose coefficients differ somewhere in the batch."""
    A_ub, A_eq = np.asarray(data[1]), np.asarray(data[3])
    K = np.concatenate([A_ub, A_eq], axis=1)
    return np.nonzero(np.any(K != K[:1], axis=(0, 2)))[0].astype(np.int32)


def _solve_batch_compact(
    data, warm, opts: SolverOptions, first_round: int, structured: bool
) -> LPSolution:
    """Run the batch in rounds of doubling iteration caps; after each round only the
    members still running go on, gathered into a smaller sub-batch, so the batch
    no longer waits for its slowest member at full width."""
    c, A_ub, b_ub, A_eq, b_eq, lo, hi = data
    m_ub = int(np.shape(A_ub)[1])
    axes = _problem_axes(m_ub, structured)
    if structured:
        idx = _varying_rows(data)
        K_all = jnp.concatenate([A_ub, A_eq], axis=1)
        P, S = _setup_batch_structured(
            c,
            K_all[:, idx, :],
            b_ub,
            b_eq,
            lo,
            hi,
            *warm,
            K_all[0],
            jnp.asarray(idx),
            opts=opts,
            axes=axes,
        )
    else:
        P, S = _setup_batch(*data, *warm, opts=opts, axes=axes)
    batch = int(np.shape(c)[0])
    max_iters = int(opts.iters)
    cap = max(opts.check_every, (first_round // opts.check_every) * opts.check_every)
    while True:
        status = np.asarray(S.status)
        active = np.nonzero(status == _RUNNING)[0]
        if active.size == 0:
            break
        size = _bucket(active.size, batch)
        if size == batch and active.size == batch:
            S = _run_batch(P, S, cap, opts=opts, axes=axes)
        else:
            sel = jnp.asarray(
                np.concatenate([active, np.full(size - active.size, active[0])]).astype(np.int32)
            )
            P_sub, S_sub = _take(P, S, sel, axes=axes)
            S = _put(S, _run_batch(P_sub, S_sub, cap, opts=opts, axes=axes), sel, active.size)
        cap = min(2 * cap, max_iters)
    return _finish_batch(P, S, axes=axes)


def _data(lp):
    return tuple(jnp.asarray(getattr(lp, f), jnp.float64) for f in _FIELDS)


def _warm(warm_start, data, batch: int | None):
    """(x_init, y_init, w_init) in the LP's units, with a leading axis when ``batch``.

    ``warm_start``: None (cold: x = clip(0), y = 0, default primal weight), or an
    :class:`LPSolution` (one solution, broadcast over a batch, or one per member), or a
    tuple ``(x, y_ub, y_eq)`` / ``(x, y_ub, y_eq, primal_weight)``.
    """
    n = int(np.shape(data[0])[-1])
    m_ub, m_eq = int(np.shape(data[2])[-1]), int(np.shape(data[4])[-1])
    lead = () if batch is None else (batch,)
    f64 = jnp.float64
    if warm_start is None:
        return (
            jnp.zeros(lead + (n,), f64),
            jnp.zeros(lead + (m_ub + m_eq,), f64),
            jnp.full(lead, jnp.nan, f64),
        )
    if isinstance(warm_start, LPSolution):
        parts = (warm_start.x, warm_start.y_ub, warm_start.y_eq, warm_start.primal_weight)
    else:
        parts = tuple(warm_start) + (jnp.nan,) * (4 - len(tuple(warm_start)))
        if len(parts) != 4:
            raise ValueError(
                "warm_start must be an LPSolution or a tuple (x, y_ub, y_eq[, primal_weight])"
            )
    x, y_ub, y_eq, w = (jnp.asarray(a, f64) for a in parts)
    for name, a, size in (("x", x, n), ("y_ub", y_ub, m_ub), ("y_eq", y_eq, m_eq)):
        if (
            a.shape[-1:] != (size,)
            or a.ndim not in (1, 1 + len(lead))
            or (a.ndim == 2 and a.shape[0] != batch)
        ):
            raise ValueError(
                f"warm_start.{name} has shape {a.shape}; expected ({size},)"
                + (f" or ({batch}, {size})" if batch else "")
            )
        if _is_concrete(a) and not bool(jnp.all(jnp.isfinite(a))):
            raise ValueError(f"warm_start.{name} contains NaN or inf; must be finite")
    y = jnp.concatenate(
        [jnp.broadcast_to(y_ub, lead + (m_ub,)), jnp.broadcast_to(y_eq, lead + (m_eq,))], -1
    )
    return jnp.broadcast_to(x, lead + (n,)), y, jnp.broadcast_to(w, lead)


def solve_lp(lp, *, warm_start=None, **opts) -> LPSolution:
    """Solve ``max c @ x  s.t.  A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi`` by PDHG.

    Args:
      lp: a :class:`perfmodel.fleet.lp.LP` (or any object with fields c, A_ub, b_ub,
        A_eq, b_eq, lo, hi), unbatched. May be traced (inside ``jax.jit``/``vmap``).
      warm_start: start from a known point instead of zero: the :class:`LPSolution` of a
        related LP (e.g. the base scenario of a set of variants; its primal weight is
        reused too) or a tuple ``(x, y_ub, y_eq)`` in the LP's units. The answer does
        not depend on it beyond ``tol``; the iteration count does.
      **opts: :class:`SolverOptions` fields: ``iters``, ``tol`` (relative), ``method``
        ('halpern' or 'average'), ``check_every``, ``ruiz_iters``, ``power_iters``,
        ``infeas_tol``, ``step_safety``, ``reflection``.

    Returns:
      :class:`LPSolution` (x in variable units; y_ub, y_eq in objective units per row
      unit; status 0 optimal / 1 iteration limit / 2 infeasible / 3 unbounded).

    Raises:
      ValueError: bad shapes, non-finite data, ``lo > hi`` or a bad option (checked
        before tracing, on concrete inputs).
    """
    lp = dense(lp)
    _check_shapes(lp, batched=False)
    _check_values(lp)
    data = _data(lp)
    return _solve_jit(*data, *_warm(warm_start, data, None), opts=_options(opts))


def solve_lp_batch(
    stacked_lp,
    *,
    compact: bool | None = None,
    first_round: int = 1024,
    shared_matrix: bool | None = None,
    warm_start=None,
    **opts,
) -> LPSolution:
    """Solve a stack of LPs (leading batch axis on every field) with ``jit(vmap(...))``.

    Args:
      stacked_lp: LP whose leaves have a leading batch axis, e.g. from
        :func:`perfmodel.fleet.lp.stack_lps`.
      compact: ``False``: one ``jit(vmap(solve))`` call; the batch runs until every
        member has stopped (finished members are frozen by ``while_loop`` batching).
        ``True``: rounds of doubling iteration caps (``first_round`` iterations first);
        after each round the members still running continue in a smaller vmapped
        sub-batch (padded to 16 * 4**j members, so at most a few compiles). Same per-member results, less wasted work when
        iteration counts vary. Default: True for concrete inputs with more than 8
        members, False when traced (inside ``jax.jit``).
      shared_matrix: (compact mode) when the members' constraint matrices differ only in
        a few rows (price draws touch the capex rows; power, delay and supply draws touch
        only ``b`` and ``c``), keep one shared preconditioned matrix (not vmapped: the
        batch's products become matrix-matrix) plus each member's differing rows. The
        preconditioner is then the first member's. EXPERIMENTAL, default False: measured
        3.8x faster than the plain compact batch (200 price/power variants of a 144-variable
        LP, same accuracy), but on another instance the first call did not finish in
        8 minutes (cause not found yet).
      warm_start: as :func:`solve_lp`; one solution (broadcast to every member, e.g. the
        base scenario's) or one per member (leading batch axis).
      **opts: as :func:`solve_lp`.

    Returns:
      :class:`LPSolution` with a leading batch axis on every leaf.
    """
    _check_shapes(stacked_lp, batched=True)
    _check_values(stacked_lp)
    o = _options(opts)
    data = _data(stacked_lp)
    concrete = all(_is_concrete(a) for a in data)
    batch = int(np.shape(data[0])[0])
    warm = _warm(warm_start, data, batch)
    if compact is None:
        compact = concrete and batch > 8
    if compact:
        if not concrete:
            raise ValueError(
                "solve_lp_batch(compact=True) needs concrete inputs; "
                "use compact=False inside jax.jit"
            )
        if shared_matrix is None:
            shared_matrix = False  # experimental: see the docstring
        return _solve_batch_compact(data, warm, o, int(first_round), bool(shared_matrix))
    if shared_matrix:
        raise ValueError("shared_matrix=True needs compact=True (concrete inputs)")
    return _solve_batch_jit(*data, *warm, opts=o)


# --------------------------------------------------------------------------- test instances


def random_fleet_lp(
    seed: int,
    n_sites: int = 3,
    n_chips: int = 6,
    n_periods: int = 8,
    n_eq: int = 1,
    capped_vars: bool = False,
):
    """A random feasible LP with the fleet planner's structure (for tests and benchmarks).

    Variables ``buy[site, chip, period]`` >= 0 (purchase units). Maximise H100e-quarters
    ``sum v_c (T - t) buy``. Rows, with deliberately wide scales:

    - power[site, period] (W, ~1e8): cumulative units x W per unit (1e3..1.4e5 W);
    - budget[year] (USD, ~1e9..1e10): units x price (3e4..3e6 USD);
    - supply[chip, period] (units, 0..5e3), zero before a chip's first delivery quarter;
    - ratio[period]: chip 0 units <= 2 x all other units (a training-loop ratio);
    - ``n_eq`` committed deliveries: ``sum_site buy[:, c, t] == d`` (equalities).

    ``capped_vars`` gives every variable a finite upper bound. x = the committed
    deliveries at site 0 is feasible by construction, so the LP is feasible and bounded.
    Returns a :class:`perfmodel.fleet.lp.LP` with var/row names.
    """
    from perfmodel.fleet.lp import LP

    rng = np.random.default_rng(seed)
    S, C, T = n_sites, n_chips, n_periods
    n = S * C * T
    idx = np.arange(n).reshape(S, C, T)
    value = rng.uniform(0.3, 3.0, C) * rng.choice([1, 8, 72], C)  # H100e per purchase unit
    power_w = rng.uniform(1e3, 1.4e5, C)
    price_usd = value * rng.uniform(2.0e4, 4.0e4, C)
    first_t = rng.integers(0, max(T // 2, 1), C)
    first_t[0] = 0
    c = np.zeros(n)
    for s in range(S):
        for k in range(C):
            c[idx[s, k]] = value[k] * (T - np.arange(T)) * rng.uniform(0.9, 1.1)
    rows, b, names = [], [], []
    site_mw = rng.uniform(50, 500, S)
    for s in range(S):
        for t in range(T):
            r = np.zeros(n)
            for k in range(C):
                r[idx[s, k, : t + 1]] = power_w[k]
            rows.append(r)
            b.append(site_mw[s] * 1e6 * (1 + 0.1 * t))
            names.append(f"power[site{s},q{t}]")
    for yr in range((T + 3) // 4):
        r = np.zeros(n)
        for k in range(C):
            r[idx[:, k, 4 * yr : 4 * yr + 4].ravel()] = price_usd[k]
        rows.append(r)
        b.append(rng.uniform(1e9, 1e10))
        names.append(f"budget[y{yr}]")
    cap = rng.uniform(100, 5000, (C, T)) * (np.arange(T)[None, :] >= first_t[:, None])
    for k in range(C):
        for t in range(T):
            r = np.zeros(n)
            r[idx[:, k, t]] = 1.0
            rows.append(r)
            b.append(cap[k, t])
            names.append(f"supply[chip{k},q{t}]")
    for t in range(T):
        r = np.zeros(n)
        r[idx[:, 0, : t + 1].ravel()] = 1.0
        for k in range(1, C):
            r[idx[:, k, : t + 1].ravel()] = -2.0
        rows.append(r)
        b.append(0.0)
        names.append(f"ratio[q{t}]")
    A_ub, b_ub = np.array(rows), np.array(b)
    # committed deliveries: a small fraction of supply, of chips other than 0 (ratio-safe)
    A_eq, b_eq, eq_names = np.zeros((n_eq, n)), np.zeros(n_eq), []
    x_feas = np.zeros(n)
    for e in range(n_eq):
        k = 1 + (e % max(C - 1, 1)) if C > 1 else 0
        t = int(first_t[k]) + e // max(C - 1, 1)
        t = min(t, T - 1)
        A_eq[e, idx[:, k, t]] = 1.0
        d = 0.05 * cap[k, t]
        b_eq[e] = d
        x_feas[idx[0, k, t]] += d
        eq_names.append(f"commit[chip{k},{e}]")  # same names for every seed (stackable)
    # make the committed plan fit: raise any violated rhs
    slack = A_ub @ x_feas - b_ub
    b_ub = np.where(slack > 0, b_ub + slack * 1.5, b_ub)
    hi = np.full(n, np.inf)
    if capped_vars:
        hi = np.maximum(rng.uniform(50, 3000, n), x_feas * 1.5)
    var_names = tuple(
        f"buy[site{s},chip{k},q{t}]" for s in range(S) for k in range(C) for t in range(T)
    )
    return LP(
        c=jnp.asarray(c),
        A_ub=jnp.asarray(A_ub),
        b_ub=jnp.asarray(b_ub),
        A_eq=jnp.asarray(A_eq),
        b_eq=jnp.asarray(b_eq),
        lo=jnp.zeros(n),
        hi=jnp.asarray(hi),
        var_names=var_names,
        row_names=tuple(names) + tuple(eq_names),
        integer=(True,) * n,
    )
