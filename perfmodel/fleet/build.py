"""The fleet LP from typed row blocks: sparse on concrete data, dense when traced.

Each constraint family (link, power, floor, supply, capex, ratio, policy, target; with
placement capacity and demand instead of link and target) is a
:class:`Block`: its nonzeros as static ``(row, col)`` index arrays, built with NumPy from
the problem's shape and static fields alone, and their values as an array of the problem's
leaves. The blocks are stacked into one COO list and turned into

* a ``scipy.sparse.csr_array`` when the leaves are concrete (no dense intermediate:
  8 offers x 50 sites x 20 quarters is 342k nonzeros, about 4 MB), or
* a dense ``jax`` matrix by one scatter-add when they are traced (``jit``/``vmap``, for
  the JAX solvers :mod:`perfmodel.fleet.pdhg` and :mod:`perfmodel.fleet.simplex`), after
  a memory check (:func:`perfmodel.fleet.lp.check_memory`).

Both forms hold the same numbers: one formulation, two storage formats.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from perfmodel.fleet.demand import HOURS_PER_QUARTER
from perfmodel.fleet.lp import LP, check_memory

if TYPE_CHECKING:
    from perfmodel.fleet.problem import Problem

__all__ = [
    "Block",
    "alive_mask",
    "build_lp",
    "existing_in_service",
    "objective_vector",
    "opex_per_unit_usd",
    "service_cost_usd",
    "lp_size",
    "row_blocks",
    "segment_slopes",
    "var_index",
]


@dataclasses.dataclass(frozen=True)
class Block:
    """One family of ``<=`` rows: nonzeros ``vals`` at (``rows``, ``cols``) (rows local to
    the block), right-hand sides ``rhs`` [m] and row names. ``kind`` names the family."""

    kind: str
    rows: np.ndarray  # [nnz] int64, 0..m-1
    cols: np.ndarray  # [nnz] int64
    vals: object  # [nnz] numpy or jax array
    rhs: object  # [m]
    names: tuple[str, ...]

    @property
    def m(self) -> int:
        return len(self.names)


def var_index(problem: Problem):
    """(buy_index[K,S,T], rest) positions in the LP variable vector: ``rest`` is
    seg_index[K,S,T,J] (value-curve segments) or, with placement, assign_index[K,T,W]
    (chips of kind k given to workload w in period t)."""
    K, S, T = problem.shape
    nb = K * S * T
    if problem.placement:
        W = problem.n_workloads
        return np.arange(nb).reshape(K, S, T), nb + np.arange(K * T * W).reshape(K, T, W)
    J = problem.n_segments
    return np.arange(nb).reshape(K, S, T), nb + np.arange(nb * J).reshape(K, S, T, J)


def segment_slopes(problem: Problem, xp=jnp):
    """Slopes of the concave PWL value, H100e per chip, per segment ``[K,S,J]``, and the
    segment lengths, chips ``[K,S,J]``."""
    dx = problem.bp_chips[..., 1:] - problem.bp_chips[..., :-1]
    dy = problem.bp_h100e[..., 1:] - problem.bp_h100e[..., :-1]
    slope = xp.where(dx > 0, dy / xp.where(dx > 0, dx, 1.0), 0.0)
    return slope, dx


def row_blocks(problem: Problem) -> list[tuple[str, int]]:
    """Names and sizes of the inequality row blocks, in order."""
    K, S, T = problem.shape
    if problem.placement:
        dem = int(sum(problem.has_demand)) * T
        blocks = [("capacity", K * T)] + ([("demand", dem)] if dem else [])
    else:
        blocks = [("link", K * S * T)]
    blocks += [
        ("power", S * T),
        ("floor", S * T),
        ("supply", K * T),
        ("capex", len(problem.years)),
    ]
    blocks.append(("ratio", sum(T - f for f in problem.ratio_from)))
    blocks.append(("policy", sum(T - f for f in problem.policy_from)))
    if problem.objective in ("min-cost", "min-tco") and not problem.placement:
        blocks.append(("target", 1))
    return blocks


def _cumulative(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, tau) with tau <= ts[i]: the deliveries installed by row period ts[i]."""
    ts = np.asarray(ts, dtype=np.int64)
    counts = ts + 1
    i = np.repeat(np.arange(len(ts)), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    return i, np.arange(int(counts.sum())) - start


def alive_mask(problem: Problem, xp=np):
    """``[K, T, T]``: 1.0 where a unit of offer k delivered in period tau is still in
    service in period t (``0 <= t - tau < lifetime_k``), else 0."""
    K, _, T = problem.shape
    t = np.arange(T)
    age = (t[:, None] - t[None, :]).astype(np.float64)  # [t, tau]
    life = xp.full(K, float(T), xp.float64) if problem.lifetime_q is None else problem.lifetime_q
    return xp.where((age[None] >= 0) & (age[None] < life[:, None, None]), 1.0, 0.0)


def existing_in_service(problem: Problem, xp=np):
    """``[K, S, T]`` existing units still in service (retired from ``existing_until``)."""
    K, S, T = problem.shape
    ex = problem.existing_units
    if problem.existing_until is None:
        return xp.broadcast_to(ex[:, :, None], (K, S, T))
    on = xp.where(np.arange(T)[None, None, :] < problem.existing_until[:, :, None], 1.0, 0.0)
    return ex[:, :, None] * on


def service_cost_usd(problem: Problem, xp=np):
    """``[K, S, T]`` opex of one unit of offer k in service at site s in period t, USD:
    energy (IT power x utilisation x PUE x hours x price) plus the offer's own opex."""
    K, S, T = problem.shape
    if problem.energy_usd_per_mwh is None:
        return xp.zeros((K, S, T))

    mwh = (problem.unit_power_w / 1e6)[:, None] * (problem.pue * problem.utilisation)[None, :]
    energy = mwh[:, :, None] * HOURS_PER_QUARTER * problem.energy_usd_per_mwh[None, :, :]
    return energy + problem.opex_usd_per_unit_q[:, None, None]


def opex_per_unit_usd(problem: Problem, xp=np):
    """``[K, S, T]`` horizon opex of one unit delivered to site s in period tau, USD."""
    return xp.einsum("ktu,kst->ksu", alive_mask(problem, xp), service_cost_usd(problem, xp))


def lp_size(problem: Problem) -> tuple[int, int, int]:
    """(rows, columns, nonzeros) of :func:`build_lp`'s LP, from the shapes alone (the
    nonzeros are an upper bound when units retire)."""
    K, S, T = problem.shape
    J = problem.n_segments
    W = problem.n_workloads
    nb = K * S * T
    P = T * (T + 1) // 2
    m = sum(size for _, size in row_blocks(problem))
    if problem.placement:
        nnz = K * T * W + K * S * P  # capacity
        nnz += K * int(sum(problem.has_demand)) * T  # demand
    else:
        nnz = nb * J + K * S * P  # link
    nnz += 2 * S * K * P + K * S * T + K * S * T  # power, floor, supply, capex
    for r, f in enumerate(problem.ratio_from):
        ns = S if problem.ratio_site[r] < 0 else 1
        tt = np.arange(f, T)
        nnz += K * ns * int((tt + 1).sum())
    for f in problem.policy_from:
        tt = np.arange(f, T)
        nnz += K * int((tt + 1).sum())
    if problem.objective in ("min-cost", "min-tco") and not problem.placement:
        nnz += K * S * J
    n = nb + (K * T * W if problem.placement else nb * J)
    return m, n, int(nnz)


def _blocks(problem: Problem, xp) -> list[Block]:
    K, S, T = problem.shape
    nb = K * S * T
    f64 = xp.float64
    cpu = problem.chips_per_unit
    umw = problem.unit_power_w / 1e6  # MW per unit (IT)
    ex_t = existing_in_service(problem, xp)  # [K,S,T]
    alive = alive_mask(problem, xp)  # [K,t,tau]
    buy_ix, seg_ix = var_index(problem)
    kk, ss, tt = np.meshgrid(np.arange(K), np.arange(S), np.arange(T), indexing="ij")
    P_i, P_tau = _cumulative(np.arange(T))  # all periods: pairs (t, tau <= t)
    alive_P = alive[:, P_i, P_tau]  # [K, pairs]
    out = []

    ks = np.arange(K * S)
    r_buy = (ks[:, None] * T + P_i[None, :]).ravel()
    c_buy = (ks[:, None] * T + P_tau[None, :]).ravel()
    v_buy = xp.broadcast_to((-cpu[:, None] * alive_P)[:, None, :], (K, S, len(P_i))).reshape(-1)
    if problem.placement:
        out += _placement_blocks(problem, xp, r_buy, c_buy, v_buy, ex_t)
    else:
        # link: sum_j seg[k,s,t,j] - cpu_k sum_{tau<=t, alive} buy[k,s,tau] <= cpu_k ex[k,s,t]
        J = problem.n_segments
        r_seg = np.repeat(np.arange(nb), J)
        c_seg = seg_ix.reshape(-1)
        out.append(
            Block(
                "link",
                np.concatenate([r_buy, r_seg]),
                np.concatenate([c_buy, c_seg]),
                xp.concatenate([v_buy, xp.ones(nb * J, f64)]),
                (cpu[:, None, None] * ex_t).reshape(-1),
                tuple(
                    f"link[{o},{s},{p}]"
                    for o in problem.offers
                    for s in problem.sites
                    for p in problem.periods
                ),
            )
        )

    def site_cumulative(kind, coef_sk, rhs, names, ts_of_s=None):
        """Rows (s, t) over sum_k coef[s,k] sum_{tau<=t, alive} buy[k,s,tau]; ts_of_s[s]:
        the row periods of site s (default all)."""
        rows, cols, vals = [], [], []
        r0 = 0
        for s in range(S):
            ts = np.arange(T) if ts_of_s is None else ts_of_s[s]
            if len(ts) == 0:
                continue
            i, tau = _cumulative(ts)
            rows.append(np.broadcast_to(r0 + i, (K, len(i))).ravel())
            cols.append(buy_ix[:, s, :][:, tau].ravel())
            vals.append((coef_sk[s][:, None] * alive[:, ts[i], tau]).reshape(-1))
            r0 += len(ts)
        return Block(
            kind, np.concatenate(rows), np.concatenate(cols), xp.concatenate(vals), rhs, names
        )

    # power: pue_s sum_k umw_k sum_{tau<=t} buy <= P[s,t] - pue_s sum_k umw_k ex[k,s,t]
    used0 = problem.pue[:, None] * xp.einsum("k,kst->st", umw, ex_t)
    out.append(
        site_cumulative(
            "power",
            problem.pue[:, None] * umw[None, :],
            (problem.power_avail_mw - used0).reshape(-1),
            tuple(f"power_mw[{s},{p}]" for s in problem.sites for p in problem.periods),
        )
    )
    # floor: sum_k rpu_k sum_{tau<=t} buy <= racks_s - sum_k rpu_k ex[k,s,t]
    rpu = problem.racks_per_unit
    out.append(
        site_cumulative(
            "floor",
            xp.broadcast_to(rpu[None, :], (S, K)),
            (problem.racks[:, None] - xp.einsum("k,kst->st", rpu, ex_t)).reshape(-1),
            tuple(f"floor_racks[{s},{p}]" for s in problem.sites for p in problem.periods),
        )
    )
    # supply: sum_s buy[k,s,t] <= supply[k,t]
    out.append(
        Block(
            "supply",
            (kk * T + tt).ravel(),
            buy_ix.ravel(),
            xp.ones(nb, f64),
            problem.supply_units.reshape(-1),
            tuple(f"supply_units[{o},{p}]" for o in problem.offers for p in problem.periods),
        )
    )
    # capex per year: sum price_k/1e6 buy[k,s,t in y] <= budget_y/1e6
    py = np.asarray(problem.period_year, dtype=np.int64)
    out.append(
        Block(
            "capex",
            py[tt].ravel(),
            buy_ix.ravel(),
            xp.broadcast_to((problem.unit_price_usd / 1e6)[:, None, None], (K, S, T)).reshape(-1),
            problem.budget_usd / 1e6,
            tuple(f"capex_musd[{y}]" for y in problem.years),
        )
    )
    # ratio: r * chips(den) - chips(num) <= -(r * den0 - num0), per period t >= from
    for r in range(len(problem.ratio_from)):
        sites = np.arange(S) if problem.ratio_site[r] < 0 else np.array([problem.ratio_site[r]])
        num = np.zeros(K)
        num[list(problem.ratio_num[r])] = 1.0
        den = np.zeros(K)
        den[list(problem.ratio_den[r])] = 1.0
        coef_k = problem.ratio_min[r] * xp.asarray(den) * cpu - xp.asarray(num) * cpu  # [K]
        ts = np.arange(problem.ratio_from[r], T)
        i, tau = _cumulative(ts)
        ns, ni = len(sites), len(i)
        rows = np.broadcast_to(i, (K, ns, ni)).ravel()
        cols = buy_ix[:, sites, :][:, :, tau].ravel()
        vals = xp.broadcast_to(
            (coef_k[:, None] * alive[:, ts[i], tau])[:, None, :], (K, ns, ni)
        ).reshape(-1)
        const = xp.einsum("kst,k->t", ex_t[:, sites, :], coef_k)[ts]
        where = "all" if problem.ratio_site[r] < 0 else problem.sites[problem.ratio_site[r]]
        out.append(
            Block(
                "ratio",
                rows,
                cols,
                vals,
                -const,
                tuple(f"ratio[{r},{where},{problem.periods[t]}]" for t in ts),
            )
        )
    # policy: sum_k (share_s - own_k) umw_k units[k,s,t] <= 0 for t >= from_s
    own = xp.asarray(np.array(problem.own, dtype=np.float64).reshape(K))
    coef_sk = (problem.own_share_min[:, None] - own[None, :]) * umw[None, :]  # [S,K]
    ts_of_s = [np.arange(problem.policy_from[s], T) for s in range(S)]
    if any(len(ts) for ts in ts_of_s):
        rhs = xp.concatenate(
            [
                -xp.einsum("k,kt->t", coef_sk[s], ex_t[:, s, :])[ts_of_s[s]]
                for s in range(S)
                if len(ts_of_s[s])
            ]
        )
        out.append(
            site_cumulative(
                "policy",
                coef_sk,
                rhs,
                tuple(
                    f"own_share[{problem.sites[s]},{problem.periods[t]}]"
                    for s in range(S)
                    for t in ts_of_s[s]
                ),
                ts_of_s,
            )
        )
    # target: -sum_{k,s,j} slope seg[k,s,tp,j] <= -target
    if problem.objective in ("min-cost", "min-tco") and not problem.placement:
        slope, _ = segment_slopes(problem, xp)  # [K,S,J]
        tp = problem.target_period
        out.append(
            Block(
                "target",
                np.zeros(K * S * problem.n_segments, np.int64),
                seg_ix[:, :, tp, :].ravel(),
                -slope.reshape(-1),
                -xp.reshape(problem.target_h100e, (1,)),
                (f"target_h100e[{problem.periods[tp]}]",),
            )
        )
    return out


def _placement_blocks(problem: Problem, xp, r_buy, c_buy, v_buy, ex_t) -> list[Block]:
    """capacity[k,t]: chips assigned to workloads <= chips of kind k in service (all
    sites); demand[w,t]: delivered <= demand (max objectives) or >= demand (min)."""
    K, S, T = problem.shape
    W = problem.n_workloads
    nb = K * S * T
    cpu = problem.chips_per_unit
    a_ix = nb + np.arange(K * T * W).reshape(K, T, W)
    # buy part: the link pairs (k, s, t, tau) summed over sites, row k*T + t
    r_cap = np.arange(K)[:, None, None] * T + (r_buy.reshape(K, S, -1) % T)
    rows = np.concatenate([r_cap.ravel(), np.repeat(np.arange(K * T), W)])
    cols = np.concatenate([c_buy, a_ix.ravel()])
    vals = xp.concatenate([v_buy, xp.ones(K * T * W, xp.float64)])
    out = [
        Block(
            "capacity",
            rows,
            cols,
            vals,
            (cpu[:, None] * ex_t.sum(axis=1)).reshape(-1),
            tuple(f"capacity[{o},{p}]" for o in problem.offers for p in problem.periods),
        )
    ]
    dem = [w for w in range(W) if problem.has_demand[w]]
    if dem:
        sign = 1.0 if problem.objective in ("max-h100e", "max-h100e-per-tco") else -1.0
        wt = np.array([(w, t) for w in dem for t in range(T)], dtype=np.int64)  # row order
        r = np.repeat(np.arange(len(wt)), K)
        ki = np.tile(np.arange(K), len(wt))
        c = a_ix[ki, wt[r, 1], wt[r, 0]]
        v = sign * problem.rate[ki, wt[r, 0]]
        rhs = sign * problem.demand[wt[:, 1], wt[:, 0]]
        out.append(
            Block(
                "demand",
                r,
                c,
                v,
                rhs,
                tuple(f"demand[{problem.workload_keys[w]},{problem.periods[t]}]" for w, t in wt),
            )
        )
    return out


def objective_vector(problem: Problem, xp):
    """``c`` of the LP (maximised): H100e-quarters for the max objectives (seg or assign
    columns), minus the cost in the units of the objective on the purchase columns."""
    K, S, T = problem.shape
    w = problem.period_weight
    price = xp.broadcast_to(problem.unit_price_usd[:, None, None], (K, S, T))
    obj = problem.objective
    if problem.placement:
        val = (problem.workload_weight * problem.h100e_per_unit)[None, :] * problem.rate  # [K,W]
        c_val = xp.einsum("kw,t->ktw", val, w).reshape(-1)
    else:
        slope, _ = segment_slopes(problem, xp)
        c_val = xp.einsum("ksj,t->kstj", slope, w).reshape(-1)
    if obj == "max-h100e":
        c_buy, scale = -problem.cost_tiebreak * price, 1.0
    elif obj == "min-cost":
        c_buy, scale = -price / 1e6, 1e-9
    elif obj == "min-tco":
        c_buy, scale = -(price + opex_per_unit_usd(problem, xp)) / 1e6, 1e-9
    else:  # max-h100e-per-tco: one Dinkelbach step, N(x) - lambda D(x)
        lam = 0.0 if problem.tco_lambda is None else problem.tco_lambda
        c_buy, scale = -lam * (price + opex_per_unit_usd(problem, xp)), 1.0
    if problem.placement and obj in ("min-cost", "min-tco"):
        scale = -scale  # serve the demand, no more: idle chips stay unassigned
    return xp.concatenate([c_buy.reshape(-1), scale * c_val])


def build_lp(problem: Problem, xp=None, *, dense: bool | None = None) -> LP:
    """The relaxed LP of ``problem`` (see :mod:`perfmodel.fleet.problem` for the model).

    Traceable: may be called under ``jit``/``vmap`` over the numeric leaves. Row units:
    link and capacity [chips], power [MW], floor [racks], supply [units], capex [M$],
    ratio [chips], policy [MW], target [H100e], demand [the workload's unit]. ``xp``:
    array module (numpy when the leaves are concrete, jax.numpy when traced; chosen
    automatically when None). With numpy the matrices are ``scipy.sparse.csr_array``
    (``dense=True``: dense NumPy arrays, for comparison and for callers that need them);
    with jax.numpy they are dense jax arrays.

    Raises :class:`perfmodel.fleet.lp.LPTooLarge` (one line naming the sizes and the
    limit) before allocating when the LP would exceed the memory limit.
    """
    if xp is None:
        leaves = jax.tree_util.tree_leaves(problem)
        xp = jnp if any(isinstance(x, jax.core.Tracer) for x in leaves) else np
    if xp is np:
        problem = jax.tree_util.tree_map(lambda v: np.asarray(v, dtype=np.float64), problem)
    dense = (xp is not np) if dense is None else dense
    K, S, T = problem.shape
    J = problem.n_segments
    W = problem.n_workloads
    m, n, nnz = lp_size(problem)
    sizes = f"{K} offers x {S} sites x {T} quarters: {m:,} rows x {n:,} columns, {nnz:,} nonzeros"
    # sparse: COO (int64 row, col, float64 value) plus the CSR copy and the row/column
    # names (~60 bytes each); dense: 8 bytes per entry
    need = 8.0 * m * n if dense else 48.0 * nnz + 60.0 * (m + n)
    check_memory("the fleet LP", sizes, need)
    f64 = xp.float64
    nb = K * S * T
    blocks = _blocks(problem, xp)
    offs = np.cumsum([0] + [b.m for b in blocks])
    rows = np.concatenate([b.rows + o for b, o in zip(blocks, offs)])
    cols = np.concatenate([b.cols for b in blocks])
    vals = xp.concatenate([xp.asarray(b.vals, f64).reshape(-1) for b in blocks])
    if xp is np and not dense:
        A_ub = sp.csr_array((vals, (rows, cols)), shape=(m, n))
        A_ub.eliminate_zeros()
        A_eq = sp.csr_array((0, n), dtype=np.float64)
    elif xp is np:
        A_ub = np.zeros((m, n))
        np.add.at(A_ub, (rows, cols), vals)
        A_eq = np.zeros((0, n))
    else:
        A_ub = jnp.zeros((m, n), jnp.float64).at[rows, cols].add(vals)
        A_eq = jnp.zeros((0, n), jnp.float64)
    b_ub = xp.concatenate([xp.asarray(b.rhs, f64).reshape(-1) for b in blocks])
    names = tuple(nm for b in blocks for nm in b.names)
    # bounds
    buy_hi = problem.allowed * problem.supply_units[:, None, :]
    if problem.placement:
        a_hi = xp.where(problem.rate[:, None, :] > 0, xp.inf, 0.0)
        hi_rest = xp.broadcast_to(a_hi, (K, T, W)).reshape(-1)
        var_rest = tuple(
            f"assign[{o},{p},{w}]"
            for o in problem.offers
            for p in problem.periods
            for w in problem.workload_keys
        )
    else:
        _, seglen = segment_slopes(problem, xp)
        hi_rest = xp.broadcast_to(seglen[:, :, None, :], (K, S, T, J)).reshape(-1)
        var_rest = tuple(
            f"seg[{o},{s},{p},{j}]"
            for o in problem.offers
            for s in problem.sites
            for p in problem.periods
            for j in range(J)
        )
    lo = xp.zeros(n, f64)
    hi = xp.concatenate([buy_hi.reshape(-1), hi_rest])
    var_names = (
        tuple(
            f"buy[{o},{s},{p}]"
            for o in problem.offers
            for s in problem.sites
            for p in problem.periods
        )
        + var_rest
    )
    return LP(
        c=objective_vector(problem, xp),
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=xp.zeros((0,), f64),
        lo=lo,
        hi=hi,
        var_names=var_names,
        row_names=names,
        integer=(True,) * nb + (False,) * (n - nb),
    )
