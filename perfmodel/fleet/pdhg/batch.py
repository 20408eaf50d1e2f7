"""Batched PDHG: vmap axes of the solver's pytrees and the compacting driver, which runs
a batch in rounds of doubling iteration caps and gathers the members still running into
smaller sub-batches (:func:`perfmodel.fleet.pdhg.solve_lp_batch` with ``compact=True``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.pdhg.iterate import _finish, _Op, _Problem, _run, _setup, _setup_structured
from perfmodel.fleet.pdhg.linalg import _precondition
from perfmodel.fleet.pdhg.solution import _RUNNING, LPSolution, SolverOptions

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
