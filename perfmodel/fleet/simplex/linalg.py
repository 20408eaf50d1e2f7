"""The batched dual simplex's data and linear algebra: the shared matrix ``K0`` with each
member's differing rows ``D``, and FTRAN/BTRAN through the shared start inverse, its
Woodbury term and the rank-1 pivot terms (see :mod:`perfmodel.fleet.simplex`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from perfmodel.fleet.simplex.basis import AT_HI, AT_LO, BASIC, FREE
from perfmodel.hardware import struct

# --------------------------------------------------------------------------- batch data


@struct.dataclass
class _Shared:
    K0: jax.Array  # [m, n] scaled matrix of member 0
    K0T: jax.Array  # [n, m] its transpose (columns as contiguous rows)
    E: jax.Array  # [r, m] one-hot rows that differ somewhere in the batch
    Binv0: jax.Array  # [m, m] inverse of the start basis (shared: member 0's; or one per member)
    P: jax.Array  # [m, r] = Binv0[:, rows]
    n: int = struct.field(pytree_node=False, default=0)


@struct.dataclass
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


@struct.dataclass
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
