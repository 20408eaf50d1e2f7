"""Running the dual simplex over a batch: fused ``jit(vmap(while_loop))`` rounds, or
blocks of ``refresh`` pivots on fixed-size chunks of the members still running
(the execution part of :mod:`perfmodel.fleet.simplex`)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.pdhg.batch import _put, vmap_axes
from perfmodel.fleet.simplex.basis import _RUNNING
from perfmodel.fleet.simplex.linalg import _Shared
from perfmodel.fleet.simplex.method import _block, _finish, _setup, _solve_member


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
