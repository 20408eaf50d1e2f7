"""The bounded dual simplex for one member (the method in :mod:`perfmodel.fleet.simplex`):
start with cost shifts, pivots (largest violation leaves, Harris two-pass ratio test),
refreshes and the final optimality check with the true costs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from perfmodel.fleet.pdhg.solution import ITERATION_LIMIT, OPTIMAL, PRIMAL_INFEASIBLE
from perfmodel.fleet.simplex.basis import (
    _INFEAS_TOL,
    _RUNNING,
    AT_HI,
    AT_LO,
    BASIC,
    FIXED,
    FREE,
    NEEDS_PRIMAL,
    NUMERICAL,
)
from perfmodel.fleet.simplex.linalg import (
    _btran_row,
    _dual_violation,
    _ftran,
    _M_col,
    _Member,
    _primal_violation,
    _refresh,
    _Shared,
    _State,
    _times_M,
)


def _pivot(sh, mb, st: _State, tol, dtol):
    """One dual simplex pivot (a no-op when nothing is violated or the member stopped)."""
    m, N = st.basic.shape[0], st.zN.shape[0]
    f64 = st.zB.dtype
    viol = _primal_violation(st)
    r = jnp.argmax(viol)
    is_r = jnp.arange(m) == r
    act = (st.status == _RUNNING) & (viol[r] > tol)
    e_r = is_r.astype(f64)
    rho = _btran_row(sh, mb, st, r)
    alpha = _times_M(sh, mb, rho)
    zr, lr, ur = st.zB[r], st.lB[r], st.uB[r]
    s = jnp.where(zr > ur, 1.0, -1.0)
    sa = s * alpha
    piv_tol = 1e-9
    elig = (
        ((st.stat == AT_LO) & (sa > piv_tol))
        | ((st.stat == AT_HI) & (sa < -piv_tol))
        | ((st.stat == FREE) & (jnp.abs(alpha) > piv_tol))
    )
    absd, absa = jnp.abs(st.d), jnp.abs(alpha)
    safe_a = jnp.where(elig, absa, 1.0)
    tmax = jnp.min(jnp.where(elig, (absd + dtol) / safe_a, jnp.inf))  # Harris pass 1
    cand = elig & (absd / safe_a <= tmax)
    q = jnp.argmax(jnp.where(cand, absa, -1.0))  # pass 2: largest |alpha|
    is_q = jnp.arange(N) == q
    none = ~jnp.any(elig)
    colq = _ftran(sh, mb, st, _M_col(sh, mb, q))
    arq = colq[r]
    bad = (jnp.abs(arq) < piv_tol) | (jnp.abs(arq - alpha[q]) > 1e-7 * (1.0 + jnp.abs(arq)))
    do = act & ~none & ~bad
    # no candidate: a Farkas row (infeasible) unless the violation is round-off level
    infeasible = act & none & (viol[r] > _INFEAS_TOL)
    noise = act & none & ~infeasible
    status = jnp.where(
        infeasible,
        PRIMAL_INFEASIBLE,
        jnp.where(noise, OPTIMAL, jnp.where(act & bad, NUMERICAL, st.status)),
    )

    leave = st.basic[r]
    is_leave = jnp.arange(N) == leave
    target = jnp.where(s > 0, ur, lr)
    arq_s = jnp.where(do, arq, 1.0)
    theta_p = (zr - target) / arq_s
    zq_new = st.zN[q] + theta_p
    zB = jnp.where(is_r, zq_new, st.zB - theta_p * colq)
    zN = jnp.where(is_q, 0.0, jnp.where(is_leave, target, st.zN))
    theta_d = st.d[q] / arq_s
    d = jnp.where(is_q, 0.0, jnp.where(is_leave, -theta_d, st.d - theta_d * alpha))
    stat = jnp.where(
        is_q, BASIC, jnp.where(is_leave, jnp.where(s > 0, AT_HI, AT_LO), st.stat)
    ).astype(st.stat.dtype)
    new_basic = dict(
        basic=jnp.where(is_r, q, st.basic).astype(st.basic.dtype),
        lB=jnp.where(is_r, mb.zl[q], st.lB),
        uB=jnp.where(is_r, mb.zu[q], st.uB),
        gB=jnp.where(is_r, mb.g[q] + st.shift[q], st.gB),
    )
    u = -(colq - e_r) / arq_s
    slot = jnp.minimum(st.k, st.U.shape[0] - 1)  # an unused (zero) slot when not pivoting
    old = dataclasses.replace(st, U=None, V=None)
    small = dataclasses.replace(old, zB=zB, zN=zN, d=d, stat=stat, k=st.k + 1, **new_basic)
    keep = jax.tree_util.tree_map(lambda a, b: jnp.where(do, a, b), small, old)
    return dataclasses.replace(
        keep,
        U=st.U.at[slot].set(jnp.where(do, u, 0.0)),
        V=st.V.at[slot].set(jnp.where(do, rho, 0.0)),
        status=status,
    )


def _with_basic_data(mb, st):
    """lB, uB, gB of the current basis (a gather, once per start)."""
    g = mb.g + st.shift
    return st.replace(lB=mb.zl[st.basic], uB=mb.zu[st.basic], gB=g[st.basic])


def _setup(sh: _Shared, mb: _Member, dtol, cap: int):
    m = sh.K0.shape[0]
    N = mb.stat0.shape[0]
    f64 = sh.K0.dtype
    # nonbasic states follow this member's own bounds (a variable fixed in the base, e.g. a
    # chip with no supply in a quarter, may be free to move in a variant, and vice versa)
    lo_ok, hi_ok = jnp.isfinite(mb.zl), jnp.isfinite(mb.zu)
    s0 = mb.stat0
    s0 = jnp.where(s0 == FIXED, AT_LO, s0)
    s0 = jnp.where((s0 == AT_HI) & ~hi_ok, AT_LO, s0)
    s0 = jnp.where((s0 == AT_LO) & ~lo_ok, jnp.where(hi_ok, AT_HI, FREE), s0)
    s0 = jnp.where((s0 == FREE) & lo_ok, AT_LO, jnp.where((s0 == FREE) & hi_ok, AT_HI, s0))
    stat0 = jnp.where(mb.stat0 == BASIC, BASIC, jnp.where(mb.zl == mb.zu, FIXED, s0)).astype(
        mb.stat0.dtype
    )
    zN = jnp.where(
        stat0 == AT_HI, mb.zu, jnp.where((stat0 == AT_LO) | (stat0 == FIXED), mb.zl, 0.0)
    )
    zN = jnp.where(jnp.isfinite(zN) & (stat0 != BASIC), zN, 0.0)
    zeros_m = jnp.zeros(m, f64)
    st = _State(
        zN=zN,
        zB=zeros_m,
        lB=zeros_m,
        uB=zeros_m,
        gB=zeros_m,
        d=jnp.zeros(N, f64),
        shift=jnp.zeros(N, f64),
        stat=stat0,
        basic=mb.basic0,
        U=jnp.zeros((cap, m), f64),
        V=jnp.zeros((cap, m), f64),
        k=jnp.zeros((), jnp.int32),
        status=jnp.asarray(_RUNNING, jnp.int32),
    )
    st, _ = _refresh(sh, mb, _with_basic_data(mb, st))
    # dual feasibility of the start: boxed variables change bound, the rest shift costs
    bad = _dual_violation(st.d, st.stat) > dtol
    boxed = jnp.isfinite(mb.zl) & jnp.isfinite(mb.zu)
    flip = bad & boxed & ((st.stat == AT_LO) | (st.stat == AT_HI))
    stat = jnp.where(flip, jnp.where(st.stat == AT_LO, AT_HI, AT_LO), st.stat).astype(st.stat.dtype)
    zN = jnp.where(flip, jnp.where(st.stat == AT_LO, mb.zu, mb.zl), st.zN)
    shift = jnp.where(bad & ~flip, -st.d, 0.0)
    st, _ = _refresh(sh, mb, _with_basic_data(mb, st.replace(stat=stat, zN=zN, shift=shift)))
    return st


def _block(sh, mb, st, tol, dtol, refresh: int, cap: int):
    st = jax.lax.fori_loop(0, refresh, lambda _, s: _pivot(sh, mb, s, tol, dtol), st)
    st, _ = _refresh(sh, mb, st)
    pviol = jnp.max(_primal_violation(st), initial=0.0)
    done = (st.status == _RUNNING) & (pviol <= tol)
    full = (st.status == _RUNNING) & (st.k + refresh > cap)
    status = jnp.where(done, OPTIMAL, jnp.where(full, ITERATION_LIMIT, st.status))
    return st.replace(status=status)


def _finish(sh, mb, st, dtol):
    """Remove the cost shifts; check optimality with the true costs; the solution."""
    st, y = _refresh(sh, mb, _with_basic_data(mb, st.replace(shift=jnp.zeros_like(st.shift))))
    dv = jnp.max(_dual_violation(st.d, st.stat), initial=0.0)
    pv = jnp.max(_primal_violation(st), initial=0.0)
    status = jnp.where(
        (st.status == OPTIMAL) & (dv > dtol),
        NEEDS_PRIMAL,
        jnp.where((st.status == OPTIMAL) & (pv > _INFEAS_TOL), NUMERICAL, st.status),
    )
    z = st.zN.at[st.basic].add(st.zB)
    p_obj = mb.g @ z
    d_obj = y @ mb.q + jnp.sum(st.d * st.zN)
    gap = jnp.abs(p_obj - d_obj) / (1.0 + jnp.abs(p_obj) + jnp.abs(d_obj))
    return st.replace(status=status), z, y, gap, pv, dv


def _solve_member(sh, mb, tol, dtol, cap: int, refresh: int):
    st = _setup(sh, mb, dtol, cap)
    st = jax.lax.while_loop(
        lambda s: s.status == _RUNNING, lambda s: _block(sh, mb, s, tol, dtol, refresh, cap), st
    )
    return _finish(sh, mb, st, dtol)
