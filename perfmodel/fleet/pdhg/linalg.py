"""The PDHG solver's linear algebra: diagonal preconditioning (step 1 of the method in
:mod:`perfmodel.fleet.pdhg`: Ruiz then Pock-Chambolle), the spectral norm by power
iteration (step 3), KKT residuals of the min form (step 6) and the Farkas / recession
ray tests of the infeasibility certificates."""

from __future__ import annotations

import math

import jax
import jax.core
import jax.numpy as jnp

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
