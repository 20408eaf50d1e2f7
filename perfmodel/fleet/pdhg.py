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
primal-dual hybrid gradient", NeurIPS 2021, and Lu & Yang's cuPDLP):

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
4. PDHG steps::

       x+ = clip(x - tau (g + K^T y), lo, hi)
       y+ = proj_Y(y + sigma (K (2 x+ - x) - q))

5. Every ``check_every`` iterations: restart to the average or the current iterate
   (whichever has the smaller weighted KKT error) when that error fell below 0.2x
   (sufficient) or 0.8x and stopped falling (necessary) of its value at the last
   restart, or after 36% of all iterations so far (artificial), as in cuPDLP.
6. Termination (status 0) when, in the equilibrated space of step 1, the relative
   primal residual ``||viol(K x - q)|| / (1 + ||q||)``, the relative dual residual
   ``||g + K^T y - lambda|| / (1 + ||g||)`` (``lambda`` = reduced costs the bounds
   absorb) and the relative gap ``|P - D| / (1 + |P| + |D|)`` are all ``<= tol``.
   Status 2 (primal infeasible suspected) / 3 (dual infeasible, i.e. unbounded,
   suspected) when the iterate difference over a check block is a Farkas / recession
   ray to ``infeas_tol`` at two consecutive checks; status 1 at the iteration limit.

Everything is one ``jax.lax.while_loop``, so :func:`solve_lp` is jit-compiled,
differentiable through :mod:`perfmodel.fleet.sensitivity` (envelope theorem, not by
unrolling), and :func:`solve_lp_batch` vmaps it over a leading scenario axis.

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

import functools
import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "LPSolution", "SolverOptions", "solve_lp", "solve_lp_batch", "STATUS_NAMES",
    "OPTIMAL", "ITERATION_LIMIT", "PRIMAL_INFEASIBLE", "DUAL_INFEASIBLE",
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


@flax.struct.dataclass
class SolverOptions:
    """Static solver settings (hashable; part of the jit cache key).

    Attributes:
      iters: iteration limit (PDHG steps).
      tol: relative tolerance on primal residual, dual residual and gap.
      check_every: PDHG steps between restart / termination checks.
      ruiz_iters: Ruiz equilibration passes.
      power_iters: power-iteration steps for ``||K||_2``.
      infeas_tol: tolerance of the infeasibility certificates.
      step_safety: ``eta = step_safety / ||K||_2``.
    """

    iters: int = flax.struct.field(pytree_node=False, default=100_000)
    tol: float = flax.struct.field(pytree_node=False, default=1e-7)
    check_every: int = flax.struct.field(pytree_node=False, default=64)
    ruiz_iters: int = flax.struct.field(pytree_node=False, default=12)
    power_iters: int = flax.struct.field(pytree_node=False, default=64)
    infeas_tol: float = flax.struct.field(pytree_node=False, default=1e-8)
    step_safety: float = flax.struct.field(pytree_node=False, default=0.95)


# --------------------------------------------------------------------------- validation

_FIELDS = ("c", "A_ub", "b_ub", "A_eq", "b_eq", "lo", "hi")


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_shapes(lp, batched: bool) -> tuple[int, int, int]:
    lead = 1 if batched else 0
    shapes = {f: tuple(np.shape(getattr(lp, f))) for f in _FIELDS}
    for f, want_nd in (("c", 1), ("A_ub", 2), ("b_ub", 1), ("A_eq", 2), ("b_eq", 1),
                       ("lo", 1), ("hi", 1)):
        if len(shapes[f]) != want_nd + lead:
            raise ValueError(
                f"LP.{f} has shape {shapes[f]}; expected {want_nd + lead} dimensions"
                + (" (leading batch axis)" if batched else ""))
    n = shapes["c"][-1]
    m_ub, m_eq = shapes["b_ub"][-1], shapes["b_eq"][-1]
    want = {"A_ub": (m_ub, n), "A_eq": (m_eq, n), "lo": (n,), "hi": (n,)}
    for f, s in want.items():
        if shapes[f][lead:] != s:
            raise ValueError(f"LP.{f} has shape {shapes[f][lead:]}; expected {s} "
                             f"(n={n} variables, m_ub={m_ub}, m_eq={m_eq})")
    if batched:
        bs = {shapes[f][0] for f in _FIELDS}
        if len(bs) != 1:
            raise ValueError(f"stacked LP fields disagree on the batch size: {sorted(bs)}")
    if n == 0:
        raise ValueError("LP.c has 0 variables; need at least 1")
    return n, m_ub, m_eq


def _check_values(lp) -> None:
    """Value checks on concrete data (skipped for traced inputs)."""
    for f in ("c", "A_ub", "b_ub", "A_eq", "b_eq"):
        v = getattr(lp, f)
        if _is_concrete(v):
            a = np.asarray(v, dtype=np.float64)
            if a.size and not np.all(np.isfinite(a)):
                bad = np.argwhere(~np.isfinite(a))[0]
                raise ValueError(f"LP.{f}{list(bad)} = {a[tuple(bad)]}; must be finite")
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
            raise ValueError(f"LP.lo{list(idx)} = {lo_a[tuple(idx)]} > LP.hi{list(idx)} = "
                             f"{hi_a[tuple(idx)]}; need lo <= hi")


def _options(opts: dict) -> SolverOptions:
    if "tol" in opts and not (0.0 < float(opts["tol"]) < 1.0):
        raise ValueError(f"tol = {opts['tol']}; allowed range (0, 1)")
    if "iters" in opts and int(opts["iters"]) < 1:
        raise ValueError(f"iters = {opts['iters']}; must be >= 1")
    if "check_every" in opts and int(opts["check_every"]) < 1:
        raise ValueError(f"check_every = {opts['check_every']}; must be >= 1")
    if "step_safety" in opts and not (0.0 < float(opts["step_safety"]) < 1.0):
        raise ValueError(f"step_safety = {opts['step_safety']}; allowed range (0, 1)")
    known = set(SolverOptions.__dataclass_fields__)
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"unknown solver option(s) {sorted(unknown)}; known: {sorted(known)}")
    return SolverOptions(**opts)


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
        w = K.T @ (K @ v)
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
    lam = (jnp.where(jnp.isfinite(lo), jnp.maximum(r, 0.0), 0.0)
           + jnp.where(jnp.isfinite(hi), jnp.minimum(r, 0.0), 0.0))
    return r - lam, lam


def _box_term(lam, lo, hi):
    """min over the box of lambda @ x, with 0 * inf = 0."""
    return jnp.sum(jnp.maximum(lam, 0.0) * _zero_inf(lo) + jnp.minimum(lam, 0.0) * _zero_inf(hi))


def _errors(x, y, K, g, q, lo, hi, is_ub):
    """Absolute (primal residual, dual residual, primal obj, dual obj) of the min problem."""
    Kx = K @ x
    pres = jnp.linalg.norm(_primal_viol(Kx - q, is_ub))
    r = g + K.T @ y
    dres_vec, lam = _reduced_cost_split(r, lo, hi)
    dres = jnp.linalg.norm(dres_vec)
    p_obj = g @ x
    d_obj = -q @ y + _box_term(lam, lo, hi)
    return pres, dres, p_obj, d_obj


def _kkt(x, y, w, K, g, q, lo, hi, is_ub):
    pres, dres, p_obj, d_obj = _errors(x, y, K, g, q, lo, hi, is_ub)
    return jnp.sqrt(w**2 * pres**2 + dres**2 / w**2 + (p_obj - d_obj) ** 2)


def _rel_errors(x, y, K, g, q, lo, hi, is_ub, q_norm, g_norm):
    pres, dres, p_obj, d_obj = _errors(x, y, K, g, q, lo, hi, is_ub)
    return (pres / (1.0 + q_norm), dres / (1.0 + g_norm),
            jnp.abs(p_obj - d_obj) / (1.0 + jnp.abs(p_obj) + jnp.abs(d_obj)))


def _primal_infeasible_ray(dy, K, q, lo, hi, is_ub, tol):
    """Is dy (a dual direction) a Farkas certificate that K x <= / == q has no x in the box?"""
    dy = jnp.where(is_ub, jnp.maximum(dy, 0.0), dy)
    scale = jnp.max(jnp.abs(dy), initial=0.0)
    dy = dy / jnp.where(scale > 0, scale, 1.0)
    r = K.T @ dy
    res, lam = _reduced_cost_split(r, lo, hi)
    gain = -q @ dy + _box_term(lam, lo, hi)
    return (scale > 0) & (gain > 0) & (jnp.linalg.norm(res) <= tol * gain)


def _dual_infeasible_ray(dx, K, g, lo, hi, is_ub, tol):
    """Is dx a recession direction of the feasible set along which g @ x -> -inf?"""
    scale = jnp.max(jnp.abs(dx), initial=0.0)
    dx = dx / jnp.where(scale > 0, scale, 1.0)
    box_viol = (jnp.where(jnp.isfinite(lo), jnp.minimum(dx, 0.0), 0.0)
                + jnp.where(jnp.isfinite(hi), jnp.maximum(dx, 0.0), 0.0))
    dx = dx - box_viol
    gain = -(g @ dx)
    viol = jnp.linalg.norm(_primal_viol(K @ dx, is_ub))
    return (scale > 0) & (gain > 0) & (viol <= tol * gain)


# --------------------------------------------------------------------------- the solver

@flax.struct.dataclass
class _State:
    x: jax.Array
    y: jax.Array
    x_sum: jax.Array
    y_sum: jax.Array
    n_avg: jax.Array
    x_last: jax.Array       # candidate at the last restart
    y_last: jax.Array
    kkt_last: jax.Array     # KKT error at the last restart
    kkt_prev: jax.Array     # candidate KKT error at the previous check
    w: jax.Array            # primal weight
    since_restart: jax.Array
    it: jax.Array
    status: jax.Array
    infeas_p: jax.Array     # consecutive primal-infeasibility certificates
    infeas_d: jax.Array
    x_out: jax.Array
    y_out: jax.Array
    errs: jax.Array         # rel (primal, dual, gap) of x_out / y_out


def _solve_one(c, A_ub, b_ub, A_eq, b_eq, lo, hi, opts: SolverOptions) -> LPSolution:
    f64 = jnp.float64
    c, A_ub, b_ub, A_eq, b_eq, lo, hi = (jnp.asarray(a, f64) for a in (c, A_ub, b_ub, A_eq, b_eq, lo, hi))
    m_ub, n = A_ub.shape
    m_eq = A_eq.shape[0]
    K0 = jnp.concatenate([A_ub, A_eq], axis=0)
    q0 = jnp.concatenate([b_ub, b_eq])
    g0 = -c
    is_ub = jnp.arange(m_ub + m_eq) < m_ub

    # 1. diagonal preconditioning (equilibrated space: tilde)
    Kt, d_r, d_c = _precondition(K0, opts.ruiz_iters)
    gt, qt = g0 * d_c, q0 * d_r
    lot, hit = lo / d_c, hi / d_c
    qt_norm, gt_norm = jnp.linalg.norm(qt), jnp.linalg.norm(gt)
    # 2. bound / objective rescaling (solver space: hat)
    sb, sc = 1.0 + qt_norm, 1.0 + gt_norm
    qh, gh, loh, hih = qt / sb, gt / sc, lot / sb, hit / sb
    # 3. steps
    k_norm = _spectral_norm(Kt, opts.power_iters)
    eta = opts.step_safety / jnp.where(k_norm > 1e-12, k_norm, 1.0)
    qh_n, gh_n = jnp.linalg.norm(qh), jnp.linalg.norm(gh)
    w0 = jnp.where((qh_n > 1e-10) & (gh_n > 1e-10), gh_n / jnp.maximum(qh_n, 1e-300), 1.0)

    def proj_y(y):
        return jnp.where(is_ub, jnp.maximum(y, 0.0), y)

    def pdhg_step(_, s):
        x, y, x_sum, y_sum, n_avg, w = s
        tau, sigma = eta / w, eta * w
        x_new = jnp.clip(x - tau * (gh + Kt.T @ y), loh, hih)
        y_new = proj_y(y + sigma * (Kt @ (2.0 * x_new - x) - qh))
        return x_new, y_new, x_sum + x_new, y_sum + y_new, n_avg + 1.0, w

    def rel_errs_tilde(xh, yh):
        # errors in the equilibrated (tilde) space: x~ = sb x^, y~ = sc y^
        return jnp.stack(_rel_errors(sb * xh, sc * yh, Kt, gt, qt, lot, hit, is_ub, qt_norm, gt_norm))

    x_init = jnp.clip(jnp.zeros((n,), f64), loh, hih)
    y_init = jnp.zeros((m_ub + m_eq,), f64)
    kkt0 = _kkt(x_init, y_init, w0, Kt, gh, qh, loh, hih, is_ub)
    state = _State(
        x=x_init, y=y_init, x_sum=jnp.zeros_like(x_init), y_sum=jnp.zeros_like(y_init),
        n_avg=jnp.zeros((), f64), x_last=x_init, y_last=y_init, kkt_last=kkt0,
        kkt_prev=jnp.asarray(jnp.inf, f64), w=w0, since_restart=jnp.zeros((), jnp.int32),
        it=jnp.zeros((), jnp.int32), status=jnp.asarray(_RUNNING, jnp.int32),
        infeas_p=jnp.zeros((), jnp.int32), infeas_d=jnp.zeros((), jnp.int32),
        x_out=x_init, y_out=y_init, errs=jnp.full((3,), jnp.inf, f64))

    block = opts.check_every

    def body(s: _State) -> _State:
        x0, y0 = s.x, s.y
        x, y, x_sum, y_sum, n_avg, w = jax.lax.fori_loop(
            0, block, pdhg_step, (s.x, s.y, s.x_sum, s.y_sum, s.n_avg, s.w))
        it = s.it + block
        since = s.since_restart + block
        x_avg, y_avg = x_sum / n_avg, y_sum / n_avg

        # termination: the better of current and average iterate
        e_cur, e_avg = rel_errs_tilde(x, y), rel_errs_tilde(x_avg, y_avg)
        use_avg = jnp.max(e_avg) < jnp.max(e_cur)
        e_best = jnp.where(use_avg, e_avg, e_cur)
        x_best = jnp.where(use_avg, x_avg, x)
        y_best = jnp.where(use_avg, y_avg, y)
        converged = jnp.all(e_best <= opts.tol)

        # infeasibility certificates from the displacement over this block
        p_ray = _primal_infeasible_ray(y - y0, Kt, qh, loh, hih, is_ub, opts.infeas_tol)
        d_ray = _dual_infeasible_ray(x - x0, Kt, gh, loh, hih, is_ub, opts.infeas_tol)
        infeas_p = jnp.where(p_ray, s.infeas_p + 1, 0)
        infeas_d = jnp.where(d_ray, s.infeas_d + 1, 0)

        status = jnp.where(converged, OPTIMAL,
                 jnp.where(infeas_p >= 2, PRIMAL_INFEASIBLE,
                 jnp.where(infeas_d >= 2, DUAL_INFEASIBLE,
                 jnp.where(it >= opts.iters, ITERATION_LIMIT, _RUNNING)))).astype(jnp.int32)

        # restart scheme (KKT error, weighted by the primal weight)
        k_cur = _kkt(x, y, w, Kt, gh, qh, loh, hih, is_ub)
        k_avg = _kkt(x_avg, y_avg, w, Kt, gh, qh, loh, hih, is_ub)
        cand_avg = k_avg < k_cur
        k_cand = jnp.where(cand_avg, k_avg, k_cur)
        x_c = jnp.where(cand_avg, x_avg, x)
        y_c = jnp.where(cand_avg, y_avg, y)
        restart = ((k_cand <= 0.2 * s.kkt_last)
                   | ((k_cand <= 0.8 * s.kkt_last) & (k_cand > s.kkt_prev))
                   | (since >= 0.36 * it))
        dxn = jnp.linalg.norm(x_c - s.x_last)
        dyn = jnp.linalg.norm(y_c - s.y_last)
        w_new = jnp.where((dxn > 1e-10) & (dyn > 1e-10),
                          jnp.exp(0.5 * jnp.log(jnp.maximum(dyn, 1e-300) / jnp.maximum(dxn, 1e-300))
                                  + 0.5 * jnp.log(w)), w)
        w_new = jnp.clip(w_new, 1e-6, 1e6)

        def pick(a_restart, a_keep):
            return jnp.where(restart, a_restart, a_keep)

        return _State(
            x=pick(x_c, x), y=pick(y_c, y),
            x_sum=pick(jnp.zeros_like(x_sum), x_sum), y_sum=pick(jnp.zeros_like(y_sum), y_sum),
            n_avg=pick(jnp.zeros_like(n_avg), n_avg),
            x_last=pick(x_c, s.x_last), y_last=pick(y_c, s.y_last),
            kkt_last=pick(k_cand, s.kkt_last), kkt_prev=pick(jnp.inf, k_cand),
            w=pick(w_new, w), since_restart=pick(jnp.zeros_like(since), since),
            it=it, status=status, infeas_p=infeas_p, infeas_d=infeas_d,
            x_out=x_best, y_out=y_best, errs=e_best)

    state = jax.lax.while_loop(lambda s: s.status == _RUNNING, body, state)

    # back to the original space: x = D_c x~ = D_c sb x^ ;  y = D_r y~ = D_r sc y^
    x = d_c * sb * state.x_out
    y = d_r * sc * state.y_out
    x = jnp.clip(x, lo, hi)
    return LPSolution(
        x=x, y_ub=y[:m_ub], y_eq=y[m_ub:], objective=c @ x,
        primal_residual=state.errs[0], dual_residual=state.errs[1], rel_gap=state.errs[2],
        iterations=state.it, status=state.status)


@functools.partial(jax.jit, static_argnames=("opts",))
def _solve_jit(c, A_ub, b_ub, A_eq, b_eq, lo, hi, opts):
    return _solve_one(c, A_ub, b_ub, A_eq, b_eq, lo, hi, opts)


@functools.partial(jax.jit, static_argnames=("opts",))
def _solve_batch_jit(c, A_ub, b_ub, A_eq, b_eq, lo, hi, opts):
    return jax.vmap(functools.partial(_solve_one, opts=opts))(c, A_ub, b_ub, A_eq, b_eq, lo, hi)


def _data(lp):
    return tuple(jnp.asarray(getattr(lp, f), jnp.float64) for f in _FIELDS)


def solve_lp(lp, **opts) -> LPSolution:
    """Solve ``max c @ x  s.t.  A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi`` by PDHG.

    Args:
      lp: a :class:`perfmodel.fleet.lp.LP` (or any object with fields c, A_ub, b_ub,
        A_eq, b_eq, lo, hi), unbatched. May be traced (inside ``jax.jit``/``vmap``).
      **opts: :class:`SolverOptions` fields: ``iters`` (default 100,000), ``tol``
        (relative, default 1e-7), ``check_every``, ``ruiz_iters``, ``power_iters``,
        ``infeas_tol``, ``step_safety``.

    Returns:
      :class:`LPSolution` (x in variable units; y_ub, y_eq in objective units per row
      unit; status 0 optimal / 1 iteration limit / 2 infeasible / 3 unbounded).

    Raises:
      ValueError: bad shapes, non-finite data, ``lo > hi`` or a bad option (checked
        before tracing, on concrete inputs).
    """
    _check_shapes(lp, batched=False)
    _check_values(lp)
    return _solve_jit(*_data(lp), opts=_options(opts))


def solve_lp_batch(stacked_lp, **opts) -> LPSolution:
    """Solve a stack of LPs (leading batch axis on every field) in one ``jit(vmap(...))`` call.

    Args:
      stacked_lp: LP whose leaves have a leading batch axis, e.g. from
        :func:`perfmodel.fleet.lp.stack_lps`.
      **opts: as :func:`solve_lp`.

    Returns:
      :class:`LPSolution` with a leading batch axis on every leaf. The batch runs until
      every member has stopped; finished members are frozen (``while_loop`` batching).
    """
    _check_shapes(stacked_lp, batched=True)
    _check_values(stacked_lp)
    return _solve_batch_jit(*_data(stacked_lp), opts=_options(opts))


# --------------------------------------------------------------------------- test instances

def random_fleet_lp(seed: int, n_sites: int = 3, n_chips: int = 6, n_periods: int = 8,
                    n_eq: int = 1, capped_vars: bool = False):
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
    value = rng.uniform(0.3, 3.0, C) * rng.choice([1, 8, 72], C)      # H100e per purchase unit
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
            r[idx[:, k, 4 * yr: 4 * yr + 4].ravel()] = price_usd[k]
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
        eq_names.append(f"commit[chip{k},q{t}]")
    # make the committed plan fit: raise any violated rhs
    slack = A_ub @ x_feas - b_ub
    b_ub = np.where(slack > 0, b_ub + slack * 1.5, b_ub)
    hi = np.full(n, np.inf)
    if capped_vars:
        hi = np.maximum(rng.uniform(50, 3000, n), x_feas * 1.5)
    var_names = tuple(f"buy[site{s},chip{k},q{t}]" for s in range(S) for k in range(C) for t in range(T))
    return LP(c=jnp.asarray(c), A_ub=jnp.asarray(A_ub), b_ub=jnp.asarray(b_ub),
              A_eq=jnp.asarray(A_eq), b_eq=jnp.asarray(b_eq), lo=jnp.zeros(n), hi=jnp.asarray(hi),
              var_names=var_names, row_names=tuple(names) + tuple(eq_names),
              integer=(True,) * n)
