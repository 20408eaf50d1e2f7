"""Batched, warm-started dual simplex in JAX for families of related LPs.

The fleet planner's scenario variants (price draws, delivery delays, power ramps) are
small perturbations of one base LP. PDHG (:mod:`perfmodel.fleet.pdhg`) needs thousands of
iterations per variant whatever its start; a simplex method started from the base LP's
optimal basis needs a few dozen pivots (HiGHS, warm-started the same way on 40 variants of
tesla-2024: median 15, worst 33). This module runs that dual simplex for a whole batch in
one ``jit(vmap(...))`` call, with the batch's shared data shared rather than copied:

- **Shared matrix.** The members' constraint matrices may differ only in a few rows (price
  draws touch the capex rows). The batch keeps member 0's matrix ``K0`` once and, per
  member, only its differing rows ``D`` (``K = K0 + E_rows D``), so the products
  ``rho @ K`` of the whole batch are one matrix-matrix product.
- **Shared inverse.** The start basis is the same for every member; its inverse ``B0^-1``
  (member 0) is computed once. A member's own ``B^-1`` differs by a rank-``r`` term
  (Woodbury: ``B^-1 = B0^-1 - B0^-1[:, rows] Q``, ``Q = (I + V B0^-1[:, rows])^-1 V B0^-1``
  with ``V`` the member's basic columns of ``D``), and each pivot adds a rank-1 term
  ``u v^T`` (``v`` = the pivot row ``e_r^T B^-1``, ``u = -(B^-1 a_q - e_r) / alpha_rq``),
  stored in fixed-size arrays, so FTRAN/BTRAN are a few small matrix-vector products
  and no per-member ``m x m`` matrix exists.

Method (textbook bounded dual simplex, e.g. Koberstein, "The dual simplex method,
techniques for a fast and stable implementation", PhD thesis, Paderborn 2005, ch. 3):
standard form ``min g z  s.t. [K I] z = q`` with ``z = (x, s)``, slacks
``s in [0, inf)`` for ``<=`` rows and ``[0, 0]`` for ``==`` rows, ``g = (-c, 0)``;
rows and columns equilibrated (Ruiz, from :mod:`perfmodel.fleet.pdhg`) with member 0's
scaling. Start: the given basis; dual infeasible boxed nonbasic variables are moved to
their other bound, other dual infeasibilities are removed by shifting their costs
(HiGHS does the same). Pivot: leaving row = largest primal bound violation, Harris
two-pass ratio test on the reduced costs (largest ``|alpha|`` among near-ties), primal and
dual updates; every ``refresh`` pivots the basic values and reduced costs are recomputed
from the (updated) inverse. Stop: no primal violation after a refresh. Then the cost
shifts are removed; if the reduced costs of the true costs still have the optimal signs,
the basis is optimal (status 0), else status :data:`NEEDS_PRIMAL` (not optimal; the
driver re-solves such members with PDHG, warm-started from here). A dual ratio test with
no candidate proves primal infeasibility (status 2). Running out of rank-1 slots
(``max_pivots``) is status 1.

Execution: by default the batch runs in blocks of ``refresh`` pivots on fixed-size chunks
of the members still running (regrouped as members finish), so the work follows the
number of running members rather than the slowest one, and the compiled programs do not
depend on the batch size; early blocks read only the first 16 rank-1 slots. Members that
use up ``max_pivots`` restart in a later round from their current basis with their own
inverse. ``compact=False`` instead runs one fused ``jit(vmap(while_loop))`` per round.

The result is an exact vertex: the objective agrees with HiGHS to round-off, duals
included (``y_ub``, ``y_eq`` as in :class:`perfmodel.fleet.pdhg.LPSolution`). Measured
(benchmarks/fleet_bench.py, 2-core CPU): 1,000 tesla-2024 variants, 248 x 720 each,
all optimal, median 13 pivots, within 3e-11 of HiGHS, 2-2.4 s for the solve.

Not differentiable (use the PDHG solver and :mod:`perfmodel.fleet.sensitivity` for
gradients) and not traceable: the data preparation runs on concrete arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.pdhg import (
    DUAL_INFEASIBLE,
    ITERATION_LIMIT,
    OPTIMAL,
    PRIMAL_INFEASIBLE,
    STATUS_NAMES,
    LPSolution,
    _check_shapes,
    _check_values,
    _data,
    _precondition,
    _put,
    vmap_axes,
)

__all__ = [
    "Basis",
    "lp_basis",
    "solve_lp_batch_simplex",
    "solve_family",
    "NEEDS_PRIMAL",
    "NUMERICAL",
    "SIMPLEX_STATUS_NAMES",
]

NEEDS_PRIMAL, NUMERICAL = 4, 5
SIMPLEX_STATUS_NAMES = dict(STATUS_NAMES)
SIMPLEX_STATUS_NAMES[NEEDS_PRIMAL] = "not optimal after removing cost shifts (needs primal simplex)"
SIMPLEX_STATUS_NAMES[NUMERICAL] = "numerical trouble (tiny or inconsistent pivot)"
_RUNNING = -1
_INFEAS_TOL = 1e-7  # a bound violation (scaled, values O(1)) no pivot can fix: infeasible

# variable states in the standard form
BASIC, AT_LO, AT_HI, FREE, FIXED = 0, 1, 2, 3, 4


@flax.struct.dataclass
class Basis:
    """A simplex basis of ``max c x, A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi``.

    Attributes:
      stat: ``[n + m]`` int32, one state per structural variable then per row slack
        (``s = b - A x``): 0 basic, 1 at lower bound, 2 at upper bound, 3 free at 0,
        4 fixed (lower = upper; equality-row slacks).
    """

    stat: jax.Array


def _highs_model(lp):
    from perfmodel.fleet.highs import HighsLP

    # a basis of the model itself, not of a presolved one
    return HighsLP(lp, presolve="off").h


def lp_basis(lp) -> tuple[Basis, float]:
    """The optimal basis of one (unbatched, concrete) LP from HiGHS (dual simplex, no
    presolve), and its optimal objective. Raises ValueError if the LP is not optimal."""
    import highspy

    _check_shapes(lp, batched=False)
    _check_values(lp)
    h = _highs_model(lp)
    h.setOptionValue("solver", "simplex")
    h.run()
    st = h.getModelStatus()
    if st != highspy.HighsModelStatus.kOptimal:
        raise ValueError(
            f"base LP for the warm start is not optimal: HiGHS says {h.modelStatusToString(st)}"
        )
    basis = h.getBasis()
    K = highspy.HighsBasisStatus
    lo, hi = np.asarray(lp.lo, np.float64), np.asarray(lp.hi, np.float64)
    n, m_ub = lo.shape[0], np.shape(lp.b_ub)[0]
    col = np.empty(n, np.int32)
    for j, s in enumerate(basis.col_status):
        if s == K.kBasic:
            col[j] = BASIC
        elif lo[j] == hi[j]:
            col[j] = FIXED
        elif s == K.kLower:
            col[j] = AT_LO
        elif s == K.kUpper:
            col[j] = AT_HI
        else:
            col[j] = (
                FREE
                if not (np.isfinite(lo[j]) or np.isfinite(hi[j]))
                else (AT_LO if np.isfinite(lo[j]) else AT_HI)
            )
    row = np.empty(len(basis.row_status), np.int32)
    for i, s in enumerate(basis.row_status):
        if s == K.kBasic:
            row[i] = BASIC
        else:  # row at a bound: slack s = b - a x at 0
            row[i] = AT_LO if i < m_ub else FIXED
    stat = np.concatenate([col, row])
    if int(np.sum(stat == BASIC)) != len(row):
        raise ValueError(
            f"HiGHS basis has {int(np.sum(stat == BASIC))} basic variables for {len(row)} rows"
        )
    return Basis(stat=jnp.asarray(stat)), float(h.getInfo().objective_function_value)


# --------------------------------------------------------------------------- batch data


@flax.struct.dataclass
class _Shared:
    K0: jax.Array  # [m, n] scaled matrix of member 0
    K0T: jax.Array  # [n, m] its transpose (columns as contiguous rows)
    E: jax.Array  # [r, m] one-hot rows that differ somewhere in the batch
    Binv0: jax.Array  # [m, m] inverse of the start basis (shared: member 0's; or one per member)
    P: jax.Array  # [m, r] = Binv0[:, rows]
    n: int = flax.struct.field(pytree_node=False, default=0)


@flax.struct.dataclass
class _Member:
    D: jax.Array  # [r, n] own rows minus member 0's (scaled)
    DT: jax.Array  # [n, r]
    g: jax.Array  # [N] min-form costs (scaled)
    q: jax.Array  # [m] right-hand side (scaled)
    zl: jax.Array  # [N] bounds (scaled)
    zu: jax.Array
    Q: jax.Array  # [r, m] Woodbury term of the start basis inverse (0 when Binv0 is its own)
    stat0: jax.Array  # [N] start states
    basic0: jax.Array  # [m] start basis (column index per basis position)


@flax.struct.dataclass
class _State:
    zN: jax.Array  # [N] nonbasic values (0 at basic columns)
    zB: jax.Array  # [m] basic values by basis position (may violate bounds)
    lB: jax.Array  # [m] bounds and shifted costs of the basic variables
    uB: jax.Array
    gB: jax.Array
    d: jax.Array  # [N] reduced costs of the shifted costs (0 at basic columns)
    shift: jax.Array  # [N] cost shifts
    stat: jax.Array  # [N] BASIC / AT_LO / AT_HI / FREE / FIXED
    basic: jax.Array  # [m] column index of each basis position
    U: jax.Array  # [cap, m] rank-1 terms: B^-1 = B_start^-1 + U^T V
    V: jax.Array  # [cap, m]
    k: jax.Array  # pivots done
    status: jax.Array


# --------------------------------------------------------------------------- linear algebra
# Written without scatters and per-element gathers (slow under vmap on CPU): one-hot
# products, masks and whole-row gathers only.


def _K_times(sh: _Shared, mb: _Member, x):
    """K x for the member's matrix K = K0 + E^T D."""
    return sh.K0 @ x + (mb.D @ x) @ sh.E


def _M_times(sh, mb, z):
    return _K_times(sh, mb, z[: sh.n]) + z[sh.n :]


def _times_M(sh, mb, w):
    """w^T [K I]."""
    return jnp.concatenate([w @ sh.K0 + (sh.E @ w) @ mb.D, w])


def _M_col(sh, mb, j):
    m = sh.K0.shape[0]
    jj = jnp.minimum(j, sh.n - 1)
    kcol = sh.K0T[jj] + mb.DT[jj] @ sh.E
    unit = (jnp.arange(m) == (j - sh.n)).astype(sh.K0.dtype)
    return jnp.where(j < sh.n, kcol, unit)


def _ftran(sh, mb, st, a):
    """B^-1 a."""
    v = sh.Binv0 @ a - sh.P @ (mb.Q @ a)
    return v + (st.V @ a) @ st.U


def _btran(sh, mb, st, w):
    """w^T B^-1."""
    v = w @ sh.Binv0 - (w @ sh.P) @ mb.Q
    return v + (st.U @ w) @ st.V


def _btran_row(sh, mb, st, r):
    """e_r^T B^-1 (row r of the inverse): row gathers instead of products with e_r."""
    return sh.Binv0[r] - sh.P[r] @ mb.Q + st.U[:, r] @ st.V


def _refresh(sh, mb, st):
    """Basic values and reduced costs recomputed from the current inverse."""
    zB = _ftran(sh, mb, st, mb.q - _M_times(sh, mb, st.zN))
    y = _btran(sh, mb, st, st.gB)
    d = jnp.where(st.stat == BASIC, 0.0, mb.g + st.shift - _times_M(sh, mb, y))
    return st.replace(zB=zB, d=d), y


def _primal_violation(st):
    return jnp.maximum(st.lB - st.zB, 0.0) + jnp.maximum(st.zB - st.uB, 0.0)


def _dual_violation(d, stat):
    return jnp.where(
        stat == AT_LO,
        jnp.maximum(-d, 0.0),
        jnp.where(stat == AT_HI, jnp.maximum(d, 0.0), jnp.where(stat == FREE, jnp.abs(d), 0.0)),
    )


# --------------------------------------------------------------------------- the method


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


def _axes(own_inverse: bool, n: int) -> _Shared:
    """vmap axes of the shared data: the start inverse is per member in later rounds."""
    ax = 0 if own_inverse else None
    return vmap_axes(_Shared, K0=None, K0T=None, E=None, Binv0=ax, P=ax, n=n)


def _results(out):
    """A finished batch's outputs without the working arrays (only stat, basic, k, status
    of the state are read afterwards)."""
    st = out[0].replace(
        U=None, V=None, d=None, zN=None, zB=None, lB=None, uB=None, gB=None, shift=None
    )
    return (st,) + out[1:]


@functools.partial(jax.jit, static_argnames=("cap", "refresh", "own_inverse"))
def _solve_batch(sh, mb, tol, dtol, cap: int, refresh: int, own_inverse: bool):
    return _results(
        jax.vmap(
            lambda s_, m_: _solve_member(s_, m_, tol, dtol, cap, refresh),
            in_axes=(_axes(own_inverse, sh.n), 0),
        )(sh, mb)
    )


@functools.partial(jax.jit, static_argnames=("cap", "own_inverse"))
def _setup_batch(sh, mb, dtol, cap: int, own_inverse: bool):
    return jax.vmap(
        lambda s_, m_: _setup(s_, m_, dtol, cap), in_axes=(_axes(own_inverse, sh.n), 0)
    )(sh, mb)


@functools.partial(
    jax.jit, static_argnames=("refresh", "cap", "slots", "own_inverse"), donate_argnums=(2,)
)
def _block_batch(sh, mb, st, tol, dtol, refresh: int, cap: int, slots: int, own_inverse: bool):
    """One block for a (sub-)batch whose members have at most ``slots - refresh`` pivots
    so far: only the first ``slots`` rank-1 slots are read and written (the rest are
    still zero), which is what keeps the early, full-width blocks cheap."""
    sub = st.replace(U=st.U[:, :slots], V=st.V[:, :slots])
    out = jax.vmap(
        lambda s_, m_, t_: _block(s_, m_, t_, tol, dtol, refresh, cap),
        in_axes=(_axes(own_inverse, sh.n), 0, 0),
    )(sh, mb, sub)
    return out.replace(U=st.U.at[:, :slots].set(out.U), V=st.V.at[:, :slots].set(out.V))


@functools.partial(jax.jit, static_argnames=("own_inverse",))
def _finish_batch(sh, mb, st, dtol, own_inverse: bool):
    return _results(
        jax.vmap(
            lambda s_, m_, t_: _finish(s_, m_, t_, dtol), in_axes=(_axes(own_inverse, sh.n), 0, 0)
        )(sh, mb, st)
    )


@functools.partial(jax.jit, static_argnames=("own_inverse",))
def _take(sh, mb, st, sel, own_inverse: bool):
    take = lambda a: a[sel]  # noqa: E731
    sh_sub = sh.replace(Binv0=take(sh.Binv0), P=take(sh.P)) if own_inverse else sh
    return (
        sh_sub,
        jax.tree_util.tree_map(take, mb),
        None if st is None else jax.tree_util.tree_map(take, st),
    )


def _chunks(idx: np.ndarray, size: int):
    """Split member indices into padded chunks of ``size`` (padding repeats the first)."""
    for a in range(0, idx.size, size):
        part = idx[a : a + size]
        yield np.concatenate([part, np.full(size - part.size, part[0])]).astype(np.int32), part.size


def _run_compact(sh, mb, tol, dtol, cap: int, refresh: int, own: bool, chunk: int):
    """Blocks of ``refresh`` pivots on the members still running, in fixed-size chunks.

    After each block the running members are gathered anew into chunks of ``chunk``
    members (the last one padded), so the work follows the number of running members
    rather than the slowest member, and every compiled function has one batch size
    whatever the batch. Blocks read 16 rank-1 slots while few pivots were made, then all
    (two compiles of the block)."""
    B = int(np.shape(mb.g)[0])
    parts = []
    for sel, k in _chunks(np.arange(B), chunk):
        sh_c, mb_c, _ = _take(sh, mb, None, jnp.asarray(sel), own_inverse=own)
        parts.append(
            jax.tree_util.tree_map(
                lambda a: a[:k], _setup_batch(sh_c, mb_c, dtol, cap=cap, own_inverse=own)
            )
        )
    st = (
        jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
        if len(parts) > 1
        else parts[0]
    )

    def groups_of(idx):
        out = []
        for sel, k in _chunks(idx, chunk):
            sel_j = jnp.asarray(sel)
            out.append([sel_j, k, *_take(sh, mb, st, sel_j, own_inverse=own)])
        return out

    groups = groups_of(np.arange(B))
    for j in range(cap // refresh):  # a member stops within cap // refresh blocks
        # rank-1 slots read in this block: 16 while few pivots were made, else all (2 compiles)
        slots = min(cap, 16) if refresh * (j + 1) <= 16 else cap
        for g in groups:
            g[4] = _block_batch(
                g[2], g[3], g[4], tol, dtol, refresh=refresh, cap=cap, slots=slots, own_inverse=own
            )
        n_run = sum(int(np.sum(np.asarray(g[4].status)[: g[1]] == _RUNNING)) for g in groups)
        last = j == cap // refresh - 1
        if (
            n_run == 0 or last or -(-n_run // chunk) < len(groups)
        ):  # regroup only when it saves calls
            for g in groups:
                st = _put(st, g[4], g[0], g[1])
            if n_run == 0 or last:
                break
            groups = groups_of(np.nonzero(np.asarray(st.status) == _RUNNING)[0])
    outs = []
    for sel, k in _chunks(np.arange(B), chunk):
        sh_c, mb_c, st_c = _take(sh, mb, st, jnp.asarray(sel), own_inverse=own)
        outs.append(
            jax.tree_util.tree_map(
                lambda a: a[:k], _finish_batch(sh_c, mb_c, st_c, dtol, own_inverse=own)
            )
        )
    return (
        jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs) if len(outs) > 1 else outs[0]
    )


# --------------------------------------------------------------------------- driver

_precondition_jit = jax.jit(_precondition, static_argnums=1)


@jax.jit
def _varying(A):
    """Which rows of a stacked matrix [B, m, n] differ from member 0's somewhere."""
    return jnp.any(A != A[:1], axis=(0, 2))


def _prepare(stacked_lp, basis):
    """Scaled batch data (numpy) and the shared parts; see the module docstring."""
    data = _data(stacked_lp)
    A_ub_j, A_eq_j = data[1], data[3]
    c, b_ub, b_eq, lo, hi = (
        np.asarray(a, np.float64) for a in (data[0], data[2], data[4], data[5], data[6])
    )
    A_ub0, A_eq0 = np.asarray(A_ub_j[0]), np.asarray(A_eq_j[0])
    B, n = c.shape
    m_ub, m_eq = b_ub.shape[1], b_eq.shape[1]
    m = m_ub + m_eq
    if basis is None:
        from perfmodel.fleet.lp import LP

        basis, _ = lp_basis(
            LP(c=c[0], A_ub=A_ub0, b_ub=b_ub[0], A_eq=A_eq0, b_eq=b_eq[0], lo=lo[0], hi=hi[0])
        )
    stat0 = np.asarray(basis.stat, np.int32)
    if stat0.shape != (n + m,):
        raise ValueError(
            f"basis.stat has shape {stat0.shape}; expected ({n + m},) for n={n} variables, m={m} rows"
        )
    if int(np.sum(stat0 == BASIC)) != m:
        raise ValueError(
            f"basis has {int(np.sum(stat0 == BASIC))} basic variables; need {m} (one per row)"
        )
    # rows that differ across the batch (only those are kept per member)
    r_ub = np.nonzero(np.asarray(_varying(A_ub_j)))[0] if m_ub else np.zeros(0, np.int64)
    r_eq = np.nonzero(np.asarray(_varying(A_eq_j)))[0] if m_eq else np.zeros(0, np.int64)
    rows = np.concatenate([r_ub, m_ub + r_eq]).astype(np.int32)
    K0 = np.concatenate([A_ub0, A_eq0], axis=0)
    K_rows = np.concatenate(
        [np.asarray(A_ub_j[:, r_ub, :]), np.asarray(A_eq_j[:, r_eq, :])], axis=1
    )
    _, d_r, d_c = _precondition_jit(jnp.asarray(K0), 12)  # member 0's equilibration, shared
    d_r, d_c = np.asarray(d_r), np.asarray(d_c)
    K0s = d_r[:, None] * K0 * d_c[None, :]
    D = d_r[rows][None, :, None] * (K_rows - K0[rows][None]) * d_c[None, None, :]
    gs = np.concatenate([-c * d_c[None, :], np.zeros((B, m))], axis=1)
    gscale = np.maximum(np.max(np.abs(gs), axis=1, keepdims=True), 1e-300)
    gs = gs / gscale
    qs = np.concatenate([b_ub, b_eq], axis=1) * d_r[None, :]
    sl_hi = np.concatenate([np.full(m_ub, np.inf), np.zeros(m_eq)])
    zl = np.concatenate([lo / d_c[None, :], np.zeros((B, m))], axis=1)
    zu = np.concatenate([hi / d_c[None, :], np.broadcast_to(sl_hi, (B, m))], axis=1)
    # right-hand side scale: values O(1), so the primal tolerance is relative
    bscale = 1.0 + np.max(np.abs(qs), axis=1, keepdims=True, initial=0.0)
    qs, zl, zu = qs / bscale, zl / bscale, zu / bscale
    basic0 = np.nonzero(stat0 == BASIC)[0].astype(np.int32)
    return dict(
        c=c,
        lo=lo,
        hi=hi,
        B=B,
        n=n,
        m_ub=m_ub,
        m=m,
        rows=rows,
        K0s=K0s,
        D=D,
        gs=gs,
        gscale=gscale,
        bscale=bscale,
        qs=qs,
        zl=zl,
        zu=zu,
        d_r=d_r,
        d_c=d_c,
        stat0=np.broadcast_to(stat0, (B, n + m)),
        basic0=np.broadcast_to(basic0, (B, m)),
    )


def _shared_start(p):
    """Round 1: one inverse of member 0's start basis, Woodbury terms per member."""
    m, n, rows = p["m"], p["n"], p["rows"]
    basic0 = p["basic0"][0]
    B0 = np.concatenate([p["K0s"], np.eye(m)], axis=1)[:, basic0]
    try:
        Binv0 = np.linalg.inv(B0)
    except np.linalg.LinAlgError as e:
        raise ValueError("the start basis is singular for member 0") from e
    P = Binv0[:, rows]
    struct = basic0 < n
    V = np.zeros((p["B"], len(rows), m))
    V[:, :, struct] = p["D"][:, :, basic0[struct]]  # B = B0 + E_rows V
    W = np.eye(len(rows))[None] + V @ P  # [B, r, r]
    Q = np.linalg.solve(W, V @ Binv0) if len(rows) else np.zeros((p["B"], 0, m))
    return Binv0, P, Q


def _own_start(p, idx, basic):
    """Later rounds: each remaining member restarts from its current basis, own inverse."""
    m, n, rows = p["m"], p["n"], p["rows"]
    K = np.broadcast_to(p["K0s"], (len(idx), m, n)).copy()
    K[:, rows, :] += p["D"][idx]
    M = np.concatenate([K, np.broadcast_to(np.eye(m), (len(idx), m, m))], axis=2)
    Bm = np.take_along_axis(M, np.asarray(basic)[:, None, :].astype(np.int64), axis=2)
    try:
        Binv = np.linalg.inv(Bm)
    except np.linalg.LinAlgError as e:
        raise ValueError("a member's basis became singular between rounds") from e
    return Binv, Binv[:, :, rows], np.zeros((len(idx), len(rows), m))


def _bucket(k: int) -> int:
    """Padded size of a later round's sub-batch (powers of 2 from 8: few compiles)."""
    size = 8
    while size < k:
        size *= 2
    return size


def solve_lp_batch_simplex(
    stacked_lp,
    basis: Basis | None = None,
    *,
    max_pivots: int = 64,
    refresh: int = 8,
    tol: float = 1e-9,
    dual_tol: float = 1e-7,
    rounds: int = 4,
    compact: bool = True,
    chunk: int = 256,
) -> LPSolution:
    """Solve a stack of related LPs by one vmapped dual simplex from a shared start basis.

    Args:
      stacked_lp: LP fields with a leading batch axis (concrete arrays), e.g. scenario
        variants built by ``jax.vmap(build_lp)``. Best when the members' matrices differ
        in few rows (only those rows are stored per member).
      basis: the start basis (from :func:`lp_basis`), e.g. of the base scenario; default:
        the optimal basis of member 0 from HiGHS.
      max_pivots: pivots per member and round: the size of the rank-1 update store
        (memory ``2 * batch * max_pivots * m`` floats). A member that runs out restarts in
        the next round from its current basis with its own factorised inverse.
      refresh: pivots between recomputations of the basic values and reduced costs.
      tol: primal feasibility tolerance (bound violation of a basic variable) in the
        equilibrated space, where the right-hand sides are O(1).
      dual_tol: dual feasibility tolerance (wrong-signed reduced cost) with the costs
        scaled to max |g| = 1; 1e-7 is HiGHS's default.
      rounds: at most this many rounds (the first for the whole batch, vmapped once).
      compact: run blocks of ``refresh`` pivots and gather the members still running
        into smaller sub-batches as others finish (default); ``False``: one fused
        ``jit(vmap(while_loop))`` call per round, the batch at full width to the end.
      chunk: members per compiled call in compact mode (the batch is processed in
        chunks of this size; smaller batches use the next power of 2 >= 8).

    Returns:
      :class:`perfmodel.fleet.pdhg.LPSolution` with a leading batch axis: status 0
      optimal (an exact vertex), 1 pivot limit, 2 primal infeasible, 4 needs primal simplex
      (cost shifts), 5 numerical trouble; ``iterations`` = pivots in all rounds.
      ``primal_residual`` / ``dual_residual`` are the largest bound / reduced-cost
      violations and ``rel_gap`` the relative primal-dual objective difference (scaled).

    Raises:
      ValueError: bad shapes or values (as :func:`perfmodel.fleet.pdhg.solve_lp_batch`),
        a basis of the wrong size or singular, or a bad option.
    """
    _check_shapes(stacked_lp, batched=True)
    _check_values(stacked_lp)
    if int(max_pivots) < 1 or int(refresh) < 1 or int(rounds) < 1 or int(chunk) < 1:
        raise ValueError(
            f"max_pivots = {max_pivots}, refresh = {refresh}, rounds = {rounds}, chunk = {chunk}; "
            "all must be >= 1"
        )
    for name, v in (("tol", tol), ("dual_tol", dual_tol)):
        if not 0.0 < float(v) < 1e-3:
            raise ValueError(f"{name} = {v}; allowed range (0, 1e-3)")
    p = _prepare(stacked_lp, basis)
    B, n, m, m_ub = (int(p[k]) for k in ("B", "n", "m", "m_ub"))
    cap = int(np.ceil(max_pivots / refresh) * refresh)
    E = (p["rows"][:, None] == np.arange(m)[None, :]).astype(np.float64)
    sh_arr = dict(K0=jnp.asarray(p["K0s"]), K0T=jnp.asarray(p["K0s"].T.copy()), E=jnp.asarray(E))
    out = None
    idx = np.arange(B)
    stat, basic = p["stat0"], p["basic0"]
    pivots = np.zeros(B, np.int64)
    for rnd in range(int(rounds)):
        own = rnd > 0
        if own:  # pad the remaining members to a bucket size
            pad = _bucket(idx.size) - idx.size
            idx = np.concatenate([idx, np.full(pad, idx[0])])
            stat = np.concatenate([stat, np.repeat(stat[:1], pad, axis=0)])
            basic = np.concatenate([basic, np.repeat(basic[:1], pad, axis=0)])
        Binv, P, Q = _own_start(p, idx, basic) if own else _shared_start(p)
        sh = _Shared(Binv0=jnp.asarray(Binv), P=jnp.asarray(P), n=n, **sh_arr)
        mb = _Member(
            D=jnp.asarray(p["D"][idx]),
            DT=jnp.asarray(np.swapaxes(p["D"][idx], 1, 2).copy()),
            g=jnp.asarray(p["gs"][idx]),
            q=jnp.asarray(p["qs"][idx]),
            zl=jnp.asarray(p["zl"][idx]),
            zu=jnp.asarray(p["zu"][idx]),
            Q=jnp.asarray(Q),
            stat0=jnp.asarray(stat),
            basic0=jnp.asarray(basic),
        )
        if compact:
            size = min(int(chunk), _bucket(int(np.shape(mb.g)[0])))
            res = _run_compact(sh, mb, float(tol), float(dual_tol), cap, int(refresh), own, size)
        else:
            res = _solve_batch(
                sh, mb, float(tol), float(dual_tol), cap=cap, refresh=int(refresh), own_inverse=own
            )
        res = jax.tree_util.tree_map(np.asarray, res)
        if own:  # drop the padding
            n_real = idx.size - pad
            idx = idx[:n_real]
            res = jax.tree_util.tree_map(lambda a: a[:n_real], res)
        st = res[0]
        pivots[idx] += st.k
        out = (
            res
            if out is None
            else jax.tree_util.tree_map(lambda a, b: _set_rows(a, idx, b), out, res)
        )
        more = np.nonzero(st.status == ITERATION_LIMIT)[0]
        if more.size == 0 or rnd == int(rounds) - 1:
            break
        idx, stat, basic = idx[more], st.stat[more], st.basic[more]
    assert out is not None  # rounds >= 1
    st, z, y, gap, pv, dres = out
    # back to the LP's units
    d_r, d_c, lo, hi, c = p["d_r"], p["d_c"], p["lo"], p["hi"], p["c"]
    x = np.clip(z[:, :n] * d_c[None, :] * p["bscale"], lo, hi)
    y_max = -(y * d_r[None, :] * p["gscale"])  # d(max c x)/dq = -d(min -c x)/dq
    obj = np.einsum("bn,bn->b", c, x)
    return LPSolution(
        x=jnp.asarray(x),
        y_ub=jnp.asarray(y_max[:, :m_ub]),
        y_eq=jnp.asarray(y_max[:, m_ub:]),
        objective=jnp.asarray(obj),
        primal_residual=jnp.asarray(pv),
        dual_residual=jnp.asarray(dres),
        rel_gap=jnp.asarray(gap),
        iterations=jnp.asarray(pivots),
        status=jnp.asarray(st.status),
        primal_weight=jnp.full((B,), jnp.nan),
    )


def _set_rows(a, idx, b):
    a = np.array(a, copy=True)
    a[idx] = b
    return a


def solve_family(
    stacked_lp,
    basis: Basis | None = None,
    *,
    fallback: str | bool = "pdhg",
    pdhg_opts: dict | None = None,
    **simplex_opts,
) -> tuple[LPSolution, dict]:
    """Solve related LPs: the batched dual simplex, then a fallback for the members it did
    not finish (pivot limit, status 4 or 5; an infeasibility certificate, status 2, stands).

    Args:
      fallback: "pdhg" (default; one vmapped PDHG call warm-started from the simplex
        point: stays in JAX, but thousands of iterations per LP), "highs" (HiGHS one by
        one: exact and fast on a CPU) or "none" (``True``/``False`` mean "pdhg"/"none").

    Returns:
      the solution and counts ``{"simplex_optimal", "fallback", "fallback_method", "seconds"}``.
    """
    if fallback is True:
        fallback = "pdhg"
    if fallback is False or fallback is None:
        fallback = "none"
    if fallback not in ("pdhg", "highs", "none"):
        raise ValueError(f"fallback = {fallback!r}; allowed: 'pdhg', 'highs', 'none'")
    t0 = time.perf_counter()
    sol = solve_lp_batch_simplex(stacked_lp, basis, **simplex_opts)
    status = np.asarray(sol.status)
    todo = np.nonzero((status != OPTIMAL) & (status != PRIMAL_INFEASIBLE))[0]
    info: dict[str, Any] = dict(
        simplex_optimal=int(np.sum(status == OPTIMAL)),
        fallback=int(todo.size) if fallback != "none" else 0,
        fallback_method=fallback,
    )
    if todo.size and fallback == "pdhg":
        from perfmodel.fleet.pdhg import solve_lp_batch

        sub = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[todo], stacked_lp)
        warm = (sol.x[todo], sol.y_ub[todo], sol.y_eq[todo])
        fb = solve_lp_batch(sub, warm_start=warm, **(pdhg_opts or {}))
        sol = jax.tree_util.tree_map(lambda a, b: jnp.asarray(a).at[todo].set(b), sol, fb)
    elif todo.size and fallback == "highs":
        from perfmodel.fleet.lp import LP
        from perfmodel.fleet.problem import relaxed_solve

        code = {"optimal": OPTIMAL, "infeasible": PRIMAL_INFEASIBLE, "unbounded": DUAL_INFEASIBLE}
        leaves = {
            f: np.array(getattr(sol, f))
            for f in (
                "x",
                "y_ub",
                "y_eq",
                "objective",
                "status",
                "primal_residual",
                "dual_residual",
                "rel_gap",
            )
        }
        for i in todo:
            lp_i = LP(
                **{
                    f: np.asarray(getattr(stacked_lp, f))[i]
                    for f in ("c", "A_ub", "b_ub", "A_eq", "b_eq", "lo", "hi")
                }
            )
            r = relaxed_solve(lp_i, "highs")
            leaves["status"][i] = code.get(r.status, ITERATION_LIMIT)
            if r.status == "optimal":
                leaves["x"][i], leaves["y_ub"][i], leaves["objective"][i] = r.x, r.y_ub, r.objective
                if np.size(r.y_eq):
                    leaves["y_eq"][i] = r.y_eq
                leaves["primal_residual"][i] = leaves["dual_residual"][i] = leaves["rel_gap"][i] = (
                    0.0
                )
        sol = dataclasses.replace(sol, **{f: jnp.asarray(v) for f, v in leaves.items()})
    info["seconds"] = time.perf_counter() - t0
    return sol, info
