"""One LP through the restarted PDHG iteration (steps 2-6 of the method in
:mod:`perfmodel.fleet.pdhg`): setup in the solver (hat) space, blocks of ``check_every``
steps with the restart and termination checks, one ``while_loop``, and the way back to
the LP's units."""

from __future__ import annotations

import functools

import jax
import jax.core
import jax.numpy as jnp

from perfmodel.fleet.pdhg.linalg import (
    _dual_infeasible_ray,
    _errors,
    _precondition,
    _primal_infeasible_ray,
    _spectral_norm,
)
from perfmodel.fleet.pdhg.solution import (
    _RUNNING,
    DUAL_INFEASIBLE,
    ITERATION_LIMIT,
    OPTIMAL,
    PRIMAL_INFEASIBLE,
    LPSolution,
    SolverOptions,
)
from perfmodel.hardware import struct


@struct.dataclass
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
    structured: bool = struct.field(pytree_node=False, default=False)

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


@struct.dataclass
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
    m_ub: int = struct.field(pytree_node=False, default=0)


@struct.dataclass
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
