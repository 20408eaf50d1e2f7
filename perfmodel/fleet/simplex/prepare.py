"""Concrete batch data for the dual simplex: member 0's equilibration, the rows that differ
across the batch, scaled costs, bounds and right-hand sides, and the start inverses
(shared with Woodbury terms in round 1, each member's own in later rounds)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.lp import LP
from perfmodel.fleet.pdhg.checks import _data
from perfmodel.fleet.pdhg.linalg import _precondition
from perfmodel.fleet.simplex.basis import BASIC, lp_basis

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
