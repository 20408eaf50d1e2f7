"""Entry points of the batched dual simplex: :func:`solve_lp_batch_simplex` and
:func:`solve_family` (the simplex, then PDHG or HiGHS for the members it did not finish)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.lp import LP
from perfmodel.fleet.pdhg import solve_lp_batch
from perfmodel.fleet.pdhg.checks import _check_shapes, _check_values
from perfmodel.fleet.pdhg.solution import (
    ITERATION_LIMIT,
    OPTIMAL,
    PRIMAL_INFEASIBLE,
    LPSolution,
    status_from_highs,
)
from perfmodel.fleet.problem import relaxed_solve
from perfmodel.fleet.simplex.basis import Basis
from perfmodel.fleet.simplex.batch import _run_compact, _solve_batch
from perfmodel.fleet.simplex.linalg import _Member, _Shared
from perfmodel.fleet.simplex.prepare import _own_start, _prepare, _shared_start


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
        sub = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[todo], stacked_lp)
        warm = (sol.x[todo], sol.y_ub[todo], sol.y_eq[todo])
        fb = solve_lp_batch(sub, warm_start=warm, **(pdhg_opts or {}))
        sol = jax.tree_util.tree_map(lambda a, b: jnp.asarray(a).at[todo].set(b), sol, fb)
    elif todo.size and fallback == "highs":
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
            leaves["status"][i] = status_from_highs(r.status)
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
