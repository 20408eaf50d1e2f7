"""The PDHG solver's entry points :func:`solve_lp` and :func:`solve_lp_batch` (and the warm
start); the method is described in :mod:`perfmodel.fleet.pdhg`."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.lp import dense
from perfmodel.fleet.pdhg.batch import _solve_batch_compact
from perfmodel.fleet.pdhg.checks import _check_shapes, _check_values, _data, _is_concrete, _options
from perfmodel.fleet.pdhg.iterate import _solve_batch_jit, _solve_jit
from perfmodel.fleet.pdhg.solution import LPSolution


def _warm(warm_start, data, batch: int | None):
    """(x_init, y_init, w_init) in the LP's units, with a leading axis when ``batch``.

    ``warm_start``: None (cold: x = clip(0), y = 0, default primal weight), or an
    :class:`LPSolution` (one solution, broadcast over a batch, or one per member), or a
    tuple ``(x, y_ub, y_eq)`` / ``(x, y_ub, y_eq, primal_weight)``.
    """
    n = int(np.shape(data[0])[-1])
    m_ub, m_eq = int(np.shape(data[2])[-1]), int(np.shape(data[4])[-1])
    lead = () if batch is None else (batch,)
    f64 = jnp.float64
    if warm_start is None:
        return (
            jnp.zeros(lead + (n,), f64),
            jnp.zeros(lead + (m_ub + m_eq,), f64),
            jnp.full(lead, jnp.nan, f64),
        )
    if isinstance(warm_start, LPSolution):
        parts = (warm_start.x, warm_start.y_ub, warm_start.y_eq, warm_start.primal_weight)
    else:
        parts = tuple(warm_start) + (jnp.nan,) * (4 - len(tuple(warm_start)))
        if len(parts) != 4:
            raise ValueError(
                "warm_start must be an LPSolution or a tuple (x, y_ub, y_eq[, primal_weight])"
            )
    x, y_ub, y_eq, w = (jnp.asarray(a, f64) for a in parts)
    for name, a, size in (("x", x, n), ("y_ub", y_ub, m_ub), ("y_eq", y_eq, m_eq)):
        if (
            a.shape[-1:] != (size,)
            or a.ndim not in (1, 1 + len(lead))
            or (a.ndim == 2 and a.shape[0] != batch)
        ):
            raise ValueError(
                f"warm_start.{name} has shape {a.shape}; expected ({size},)"
                + (f" or ({batch}, {size})" if batch else "")
            )
        if _is_concrete(a) and not bool(jnp.all(jnp.isfinite(a))):
            raise ValueError(f"warm_start.{name} contains NaN or inf; must be finite")
    y = jnp.concatenate(
        [jnp.broadcast_to(y_ub, lead + (m_ub,)), jnp.broadcast_to(y_eq, lead + (m_eq,))], -1
    )
    return jnp.broadcast_to(x, lead + (n,)), y, jnp.broadcast_to(w, lead)


def solve_lp(lp, *, warm_start=None, **opts) -> LPSolution:
    """Solve ``max c @ x  s.t.  A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi`` by PDHG.

    Args:
      lp: a :class:`perfmodel.fleet.lp.LP` (or any object with fields c, A_ub, b_ub,
        A_eq, b_eq, lo, hi), unbatched. May be traced (inside ``jax.jit``/``vmap``).
      warm_start: start from a known point instead of zero: the :class:`LPSolution` of a
        related LP (e.g. the base scenario of a set of variants; its primal weight is
        reused too) or a tuple ``(x, y_ub, y_eq)`` in the LP's units. The answer does
        not depend on it beyond ``tol``; the iteration count does.
      **opts: :class:`SolverOptions` fields: ``iters``, ``tol`` (relative), ``method``
        ('halpern' or 'average'), ``check_every``, ``ruiz_iters``, ``power_iters``,
        ``infeas_tol``, ``step_safety``, ``reflection``.

    Returns:
      :class:`LPSolution` (x in variable units; y_ub, y_eq in objective units per row
      unit; status 0 optimal / 1 iteration limit / 2 infeasible / 3 unbounded).

    Raises:
      ValueError: bad shapes, non-finite data, ``lo > hi`` or a bad option (checked
        before tracing, on concrete inputs).
    """
    lp = dense(lp)
    _check_shapes(lp, batched=False)
    _check_values(lp)
    data = _data(lp)
    return _solve_jit(*data, *_warm(warm_start, data, None), opts=_options(opts))


def solve_lp_batch(
    stacked_lp,
    *,
    compact: bool | None = None,
    first_round: int = 1024,
    shared_matrix: bool | None = None,
    warm_start=None,
    **opts,
) -> LPSolution:
    """Solve a stack of LPs (leading batch axis on every field) with ``jit(vmap(...))``.

    Args:
      stacked_lp: LP whose leaves have a leading batch axis, e.g. from
        :func:`perfmodel.fleet.lp.stack_lps`.
      compact: ``False``: one ``jit(vmap(solve))`` call; the batch runs until every
        member has stopped (finished members are frozen by ``while_loop`` batching).
        ``True``: rounds of doubling iteration caps (``first_round`` iterations first);
        after each round the members still running continue in a smaller vmapped
        sub-batch (padded to 16 * 4**j members, so at most a few compiles). Same per-member results, less wasted work when
        iteration counts vary. Default: True for concrete inputs with more than 8
        members, False when traced (inside ``jax.jit``).
      shared_matrix: (compact mode) when the members' constraint matrices differ only in
        a few rows (price draws touch the capex rows; power, delay and supply draws touch
        only ``b`` and ``c``), keep one shared preconditioned matrix (not vmapped: the
        batch's products become matrix-matrix) plus each member's differing rows. The
        preconditioner is then the first member's. EXPERIMENTAL, default False: measured
        3.8x faster than the plain compact batch (200 price/power variants of a 144-variable
        LP, same accuracy), but on another instance the first call did not finish in
        8 minutes (cause not found yet).
      warm_start: as :func:`solve_lp`; one solution (broadcast to every member, e.g. the
        base scenario's) or one per member (leading batch axis).
      **opts: as :func:`solve_lp`.

    Returns:
      :class:`LPSolution` with a leading batch axis on every leaf.
    """
    _check_shapes(stacked_lp, batched=True)
    _check_values(stacked_lp)
    o = _options(opts)
    data = _data(stacked_lp)
    concrete = all(_is_concrete(a) for a in data)
    batch = int(np.shape(data[0])[0])
    warm = _warm(warm_start, data, batch)
    if compact is None:
        compact = concrete and batch > 8
    if compact:
        if not concrete:
            raise ValueError(
                "solve_lp_batch(compact=True) needs concrete inputs; "
                "use compact=False inside jax.jit"
            )
        if shared_matrix is None:
            shared_matrix = False  # experimental: see the docstring
        return _solve_batch_compact(data, warm, o, int(first_round), bool(shared_matrix))
    if shared_matrix:
        raise ValueError("shared_matrix=True needs compact=True (concrete inputs)")
    return _solve_batch_jit(*data, *warm, opts=o)
