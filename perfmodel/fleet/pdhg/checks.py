"""Input checks of the PDHG solver: LP shapes, finite values, ``lo <= hi`` and the
options, on concrete inputs before tracing (traced inputs skip the value checks)."""

from __future__ import annotations

import dataclasses

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.pdhg.solution import SolverOptions

_FIELDS = ("c", "A_ub", "b_ub", "A_eq", "b_eq", "lo", "hi")


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_shapes(lp, batched: bool) -> tuple[int, int, int]:
    lead = 1 if batched else 0
    shapes = {f: tuple(np.shape(getattr(lp, f))) for f in _FIELDS}
    for f, want_nd in (
        ("c", 1),
        ("A_ub", 2),
        ("b_ub", 1),
        ("A_eq", 2),
        ("b_eq", 1),
        ("lo", 1),
        ("hi", 1),
    ):
        if len(shapes[f]) != want_nd + lead:
            raise ValueError(
                f"LP.{f} has shape {shapes[f]}; expected {want_nd + lead} dimensions"
                + (" (leading batch axis)" if batched else "")
            )
    n = shapes["c"][-1]
    m_ub, m_eq = shapes["b_ub"][-1], shapes["b_eq"][-1]
    want = {"A_ub": (m_ub, n), "A_eq": (m_eq, n), "lo": (n,), "hi": (n,)}
    for f, s in want.items():
        if shapes[f][lead:] != s:
            raise ValueError(
                f"LP.{f} has shape {shapes[f][lead:]}; expected {s} "
                f"(n={n} variables, m_ub={m_ub}, m_eq={m_eq})"
            )
    if batched:
        bs = {shapes[f][0] for f in _FIELDS}
        if len(bs) != 1:
            raise ValueError(f"stacked LP fields disagree on the batch size: {sorted(bs)}")
    if n == 0:
        raise ValueError("LP.c has 0 variables; need at least 1")
    return n, m_ub, m_eq


@jax.jit
def _all_finite(a):
    return jnp.all(jnp.isfinite(a))


def _finite(v) -> bool:
    """All entries finite (v concrete); jitted for large arrays, evaluated now even while
    an outer function is being traced."""
    if isinstance(v, np.ndarray) or np.isscalar(v):
        return bool(np.all(np.isfinite(v)))
    with jax.ensure_compile_time_eval():
        return bool(_all_finite(jnp.asarray(v)))


def _check_values(lp) -> None:
    """Value checks on concrete data (skipped for traced inputs)."""
    import scipy.sparse as sp

    for f in ("c", "A_ub", "b_ub", "A_eq", "b_eq"):
        v = getattr(lp, f)
        if sp.issparse(v):  # the nonzeros are the values to check
            v = np.asarray(v.toarray() if not np.all(np.isfinite(v.data)) else v.data)
        if _is_concrete(v) and np.size(v) and not _finite(v):
            a = np.asarray(v, dtype=np.float64)
            bad = np.argwhere(~np.isfinite(a))[0]
            raise ValueError(f"LP.{f}{[int(i) for i in bad]} = {a[tuple(bad)]}; must be finite")
    lo, hi = lp.lo, lp.hi
    if _is_concrete(lo) and _is_concrete(hi):
        lo_a, hi_a = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if np.any(np.isnan(lo_a)) or np.any(np.isnan(hi_a)):
            raise ValueError("LP.lo / LP.hi contain NaN; bounds must be numbers or +-inf")
        if np.any(lo_a == np.inf):
            i = int(np.argmax(lo_a == np.inf))
            raise ValueError(f"LP.lo[{i}] = inf; a lower bound must be < inf")
        if np.any(hi_a == -np.inf):
            i = int(np.argmax(hi_a == -np.inf))
            raise ValueError(f"LP.hi[{i}] = -inf; an upper bound must be > -inf")
        bad = lo_a > hi_a
        if np.any(bad):
            idx = np.argwhere(bad)[0]
            raise ValueError(
                f"LP.lo{[int(i) for i in idx]} = {lo_a[tuple(idx)]} > LP.hi{[int(i) for i in idx]} = "
                f"{hi_a[tuple(idx)]}; need lo <= hi"
            )


def _options(opts: dict) -> SolverOptions:
    if "tol" in opts and not (0.0 < float(opts["tol"]) < 1.0):
        raise ValueError(f"tol = {opts['tol']}; allowed range (0, 1)")
    if "iters" in opts and int(opts["iters"]) < 1:
        raise ValueError(f"iters = {opts['iters']}; must be >= 1")
    if "check_every" in opts and int(opts["check_every"]) < 1:
        raise ValueError(f"check_every = {opts['check_every']}; must be >= 1")
    if "step_safety" in opts and not (0.0 < float(opts["step_safety"]) < 1.0):
        raise ValueError(f"step_safety = {opts['step_safety']}; allowed range (0, 1)")
    if "method" in opts and opts["method"] not in ("halpern", "average"):
        raise ValueError(f"method = {opts['method']!r}; allowed: 'halpern', 'average'")
    if "reflection" in opts and not (0.0 <= float(opts["reflection"]) <= 1.0):
        raise ValueError(f"reflection = {opts['reflection']}; allowed range [0, 1]")
    known = set(SolverOptions.__dataclass_fields__)
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"unknown solver option(s) {sorted(unknown)}; known: {sorted(known)}")
    o = SolverOptions(**opts)
    return dataclasses.replace(
        o,
        iters=int(o.iters),
        tol=float(o.tol),
        infeas_tol=float(o.infeas_tol),
        step_safety=float(o.step_safety),
        reflection=float(o.reflection),
    )


def _data(lp):
    return tuple(jnp.asarray(getattr(lp, f), jnp.float64) for f in _FIELDS)
