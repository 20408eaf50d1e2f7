"""Interconnect: time of collectives on the network of a cluster (alpha-beta models).

A :class:`Network` is the network *as one chip of a cluster sees it*: its scale-up link
(NVLink/NVSwitch, Infinity Fabric, a Dojo tile-mesh edge), its scale-out link (an
InfiniBand/RoCE NIC, Dojo's interface-processor Ethernet Z-plane), the latencies of both,
how many chips share a scale-up domain, the fat-tree taper of the scale-out network, and
whether the scale-up domain is a 2-D mesh (Dojo) or switched. All leaves are float
arrays, so :func:`collective_time_s` can be ``jit``-ed, ``vmap``-ed over message sizes or
networks, and differentiated with respect to bandwidths and latencies.

Bandwidths in a :class:`Network` are *achievable* rates: :func:`network_for` multiplies
the catalog's nominal link rate by the link's bandwidth efficiency, the catalog figure
``efficiency_ratio`` (e.g. 0.8 for NVLink and 0.9 for InfiniBand; ESTIMATES), or the
class default in the catalog's ``[link_defaults]`` for a link without one. Every link
figure (rate, latency, efficiency, in-switch reduction) comes from the catalog
(``perfmodel/data/catalog_systems.toml`` plus user files); this module keeps no copy.
A :class:`Network` built by hand is used as given. Consumers must not apply a second
bandwidth efficiency on top.

Conventions (all SI: byte, s, byte/s):

* ``nbytes`` is the full buffer per member: the all-reduce buffer, the reduce-scatter
  *input*, the all-gather *output*, the data an all-to-all member scatters (``nbytes/g``
  to each member), the message of a send/recv.
* ``g`` = ``group_size`` members; ``m`` = ``members_per_domain`` of them share one
  scale-up domain (default ``min(g, domain_size)``); the group spans ``d = g / m``
  domains. Members of a domain are assumed contiguous (a sub-mesh on a mesh).
* Scale-up bandwidth ``B_u`` is per chip and direction on a switched domain; on a mesh
  domain it is the bandwidth of *one edge* (to one neighbour) per direction, ``e``.
* Scale-out bandwidth per chip is ``B_o = scaleout_bytes_per_s / oversubscription``
  (every byte is assumed to cross the tapered level of the fat tree).

Algorithms (``T`` = time, ``a`` = latency per step; RS = reduce-scatter, AG =
all-gather, AR = all-reduce):

* **ring** (NCCL-style, rail-aligned): ``T_RS = T_AG = (g-1)/g * N/B + (g-1) a``,
  ``T_AR = T_RS + T_AG``. Inside a domain ``B = B_ring`` and ``a = a_u``, with
  ``B_ring = B_u`` on a switch; on a mesh the ring is a bidirectional snake (a
  Hamiltonian cycle of neighbour links), ``B_ring = 2 e``. Across domains NCCL runs
  ``m`` rings (channels), each leaving a domain through a different member's NIC, so a
  member sends ``1/m`` of each step's chunk over its NIC and ``(m-1)/m`` over the
  scale-up link: ``1/B = max(1/(m B_o), (m-1)/(m B_ring))`` (``B = B_o`` for ``m = 1``),
  and ``a = max(a_u, a_o)``.
* **flat_ring**: one ring whose every step is paced by its slowest hop:
  ``B = min(B_ring, B_o)``, ``a = max(a_u, a_o)`` when spanning domains (the textbook
  flat ring; never faster than **ring**, kept as the reference for the hierarchy).
* **tree** (all-reduce only; NCCL double binary tree):
  ``T_AR = 2 (ceil(log2 d) a_o + ceil(log2 m) a_u) + 2 N / B_tree`` -- reduce up the
  tree and broadcast down, pipelined; each member sends about ``N`` up and ``N`` down
  in total for large messages, hence ``2 N / B``. ``B_tree`` is the slowest hop
  (``B_u`` -- one edge on a mesh -- and ``B_o`` when spanning). On a mesh, tree edges
  between non-neighbours are charged one hop of latency per level (optimistic).
* **hierarchical** (two levels): reduce-scatter inside the domain over the ``m``
  members (ring on a switch, the 2-D algorithm on a mesh; bandwidth term
  ``(1 - 1/m) N / B_ring``), a ring across the ``d`` domains on the per-chip share
  ``N/m`` over the scale-out network (``(d-1)/d (N/m) / B_o`` per pass), then all-gather
  inside. Chunks are pipelined through the phases, so the scale-up and scale-out links
  work at the same time: the bandwidth terms take the max and the latencies add,
  ``T_AR = max(2 (1-1/m) N/B_ring, 2 (d-1)/d N/(m B_o)) + 2 L_in + 2 (d-1) a_o``.
  It is never slower than **flat_ring** (for any links).
* **mesh2d** (Dojo tile mesh, ``k = sqrt(m)``; a ``k x k`` sub-mesh): RS along the rows,
  then along the columns on ``1/k`` of the data. Half of the buffer goes row-first, the
  other half column-first at the same time, so all four edges of a tile are busy; a ring
  embedded in a row (a line, no wrap-around) uses both directions of each edge, so each
  1-D phase runs at ``e`` per half: ``T_RS = (1 - 1/m) N / (2 e) + 2 (k-1) a_u``
  (i.e. ``(1 - 1/m) N / B_ring + 2 (k-1) a_u``: the bandwidth term of the snake ring,
  but ``2 (k-1)`` instead of ``m-1`` latency steps). Across domains it is combined with
  the scale-out level like **hierarchical**. On a switched network it is the 2-D ring
  (offered on request, not part of ``auto`` there).
* **nvls** (all-reduce, only with ``switch_reduction = 1`` on a switched domain; NVLink
  SHARP): each member sends its buffer into the switch once and receives the reduced
  result once by multicast, ``T_in = N / (r B_u) + 2 a_u`` with ``r`` =
  ``switch_reduction_ratio`` (catalog; 0.76, fitted to nccl-tests on 8x H100); across
  domains pipelined with a ring over the domains like **hierarchical**.
* **direct** all-to-all: each member sends ``N/g`` to every member.
  Switched: ``T = max(N (m-1)/g / B_u, N (g-m)/g / B_o) + (m-1) a_u + (g-m) a_o``
  (pairwise exchange, ``g-1`` rounds: the upper end of small-message latency).
  Mesh: the local part is bisection-limited, ``k (N m/g) / (4 e)`` (half the sub-mesh
  sends half its local data across a cut of ``k`` edges).
* **direct** send/recv: ``T = a + N / B`` over the scale-out link (``B_o``, ``a_o``)
  when the group spans domains, else over the scale-up link (one edge on a mesh:
  neighbours are assumed adjacent).
* ``auto`` is the hard minimum over ring, tree and nvls (all-reduce only, nvls where
  available) and hierarchical (which is mesh2d on a mesh; left out inside one switched
  domain, where it equals ring; flat_ring is never faster than ring). ``smooth`` is the
  soft minimum ``(sum_i T_i**-p)**(-1/p)`` over the same ``n <= 4`` candidates with
  ``p = SMOOTH_P``: ``hard * n**(-1/p) <= smooth <= hard`` (within 4.3% at ``p = 32``),
  differentiable everywhere (for gradients across an algorithm switch).

A group of one member costs 0 for every collective.

Not modelled: InfiniBand SHARP (in-network reduction across domains); congestion,
adaptive routing and job placement beyond the taper; NCCL's protocol switch (LL, LL128,
Simple) with message size (folded into latency and efficiency); the MI300X full mesh is
treated as a switch with the 7 links' aggregate (a point-to-point send uses one 64 GB/s
link in reality); overlap of communication with compute (the training model's job).

Example::

    >>> from perfmodel.interconnect import network_for, collective_time_s
    >>> net = network_for("h100_sxm")                  # DGX H100: NVLink4 x8 + NDR IB
    >>> t = collective_time_s("all_reduce", 1e9, 64, net)   # 1 GB over 8 nodes, s
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.choices import COLLECTIVE_KINDS
from perfmodel.interconnect.network import (
    Network,
    _check_range,
    _concrete,
    _f,
    validate_network,
)

KINDS: tuple[str, ...] = COLLECTIVE_KINDS
ALGORITHMS: tuple[str, ...] = (
    "ring",
    "flat_ring",
    "tree",
    "hierarchical",
    "mesh2d",
    "nvls",
    "direct",
)
#: Algorithms valid for each collective (besides ``auto`` and ``smooth``).
VALID_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "all_reduce": ("ring", "flat_ring", "tree", "hierarchical", "mesh2d", "nvls"),
    "reduce_scatter": ("ring", "flat_ring", "hierarchical", "mesh2d"),
    "all_gather": ("ring", "flat_ring", "hierarchical", "mesh2d"),
    "all_to_all": ("direct",),
    "send_recv": ("direct",),
}
SMOOTH_P = 32.0
"""Exponent of the smooth minimum; ``hard * n**(-1/SMOOTH_P) <= smooth <= hard``."""


def _check_call(
    kind: str, algorithm: str, nbytes, group_size, net: Network, members_per_domain
) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {KINDS}")
    allowed = ("auto", "smooth") + VALID_ALGORITHMS[kind]
    if algorithm not in allowed:
        raise ValueError(f"algorithm {algorithm!r} is not valid for {kind}; allowed: {allowed}")
    if not isinstance(net, Network):
        raise ValueError(f"net must be a Network (see network_for), got {type(net).__name__}")
    _check_range("nbytes", nbytes, 0.0)
    _check_range("group_size", group_size, 1.0, integer=True)
    validate_network(net)
    if algorithm == "nvls":
        r, mesh = _concrete(net.switch_reduction), _concrete(net.mesh)
        if r is not None and mesh is not None and not np.all((r == 1.0) & (mesh == 0.0)):
            raise ValueError(
                "algorithm 'nvls' needs a switched network with "
                "switch_reduction = 1.0 (network_for(..., switch_reduction=True) "
                "on NVLink4/NVLink5 systems)"
            )
    if members_per_domain is not None:
        _check_range("members_per_domain", members_per_domain, 1.0, integer=True)
        m, g, dom = (
            _concrete(members_per_domain),
            _concrete(group_size),
            _concrete(net.domain_size),
        )
        if m is not None and g is not None and dom is not None:
            hi = np.minimum(g, dom)
            bad = np.broadcast_to(m > hi + 1e-9, np.broadcast_shapes(m.shape, hi.shape))
            if np.any(bad):
                mm = np.broadcast_to(m, bad.shape)[bad].flat[0]
                hh = np.broadcast_to(hi, bad.shape)[bad].flat[0]
                raise ValueError(
                    f"members_per_domain = {mm:g} must be in [1, min(group_size, "
                    f"domain_size)] = [1, {hh:g}]"
                )


# --------------------------------------------------------------------------------------
# Minimum (hard and smooth)
# --------------------------------------------------------------------------------------


def hard_min(ts: Sequence[jnp.ndarray]) -> jnp.ndarray:
    """Element-wise minimum of candidate times (for reporting)."""
    out = ts[0]
    for t in ts[1:]:
        out = jnp.minimum(out, t)
    return out


def smooth_min(ts: Sequence[jnp.ndarray], p: float = SMOOTH_P) -> jnp.ndarray:
    """Soft minimum ``(sum_i t_i**-p)**(-1/p)`` of non-negative times.

    ``hard * n**(-1/p) <= smooth <= hard``; infinite candidates drop out; 0 if any is 0.
    Computed as ``h * (sum_i (h/t_i)**p)**(-1/p)`` with ``h`` the hard minimum (the value
    does not depend on ``h``), which is overflow-free and has finite gradients.
    """
    h = hard_min(ts)
    pos = h > 0
    hs = jnp.where(pos, h, 1.0)
    s = sum(jnp.where(pos, hs / jnp.where(pos, t, 1.0), 1.0) ** p for t in ts)
    return jnp.where(pos, hs * s ** (-1.0 / p), 0.0)


# --------------------------------------------------------------------------------------
# One-level primitives: N bytes, n members, bandwidth bw, latency a
# --------------------------------------------------------------------------------------


def ring_time_s(kind: str, nbytes, n, bw, latency_s):
    """Ring collective over ``n`` members on one link class (bandwidth ``bw`` byte/s per
    member and direction, ``latency_s`` per step).

    ``T_RS = T_AG = (n-1)/n * N/bw + (n-1) a``; ``T_AR = 2 T_RS``.
    """
    n = _f(n)
    one = (n - 1.0) / n * _f(nbytes) / bw + (n - 1.0) * latency_s
    if kind in ("reduce_scatter", "all_gather"):
        return one
    if kind == "all_reduce":
        return 2.0 * one
    raise ValueError(f"ring_time_s: kind {kind!r} must be all_reduce, reduce_scatter or all_gather")


def _ceil_log2(n):
    return jnp.ceil(jnp.log2(jnp.maximum(n, 1.0)) - 1e-9)


def tree_time_s(nbytes, n, bw, latency_s):
    """Double-binary-tree all-reduce over ``n`` members on one link class:
    ``T = 2 ceil(log2 n) a + 2 N / bw`` (0 for ``n = 1``)."""
    n = _f(n)
    return jnp.where(n > 1.0, 2.0 * _ceil_log2(n) * latency_s + 2.0 * _f(nbytes) / bw, 0.0)


def mesh2d_rs_time_s(nbytes, n, ring_bw, latency_s):
    """2-D reduce-scatter (or all-gather) on a ``sqrt(n) x sqrt(n)`` (sub-)mesh:
    ``T = (1 - 1/n) N / ring_bw + 2 (sqrt(n) - 1) a`` with ``ring_bw = 2 e`` on a mesh
    (both dimensions busy at once) or the per-chip bandwidth on a switch (2-D ring)."""
    n = _f(n)
    return (1.0 - 1.0 / n) * _f(nbytes) / ring_bw + 2.0 * (jnp.sqrt(n) - 1.0) * latency_s


# --------------------------------------------------------------------------------------
# Collectives on a Network
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Levels:
    g: Any
    m: Any
    d: Any
    spans: Any
    up_bw: Any  # per chip (switch) or per edge (mesh)
    ring_bw: Any  # per chip rate of a 1-D ring inside the domain
    out_bw: Any  # per chip, after the taper
    up_lat: Any
    out_lat: Any
    mesh: Any
    nvls: Any  # in-switch reduction available (switched domain only)
    nvls_ratio: Any  # its bandwidth relative to up_bw


def _levels(group_size, net: Network, members_per_domain) -> _Levels:
    # Clamps keep traced calls finite (concrete inputs are validated before this):
    # g >= 1 and 1 <= m <= g, so d >= 1.
    g = jnp.maximum(_f(group_size), 1.0)
    if members_per_domain is None:
        m = jnp.minimum(g, jnp.maximum(net.domain_size, 1.0))
    else:
        m = jnp.clip(_f(members_per_domain), 1.0, g)
    d = g / m
    mesh = net.mesh > 0.5
    up = net.scaleup_bytes_per_s
    return _Levels(
        g=g,
        m=m,
        d=d,
        spans=d > 1.0 + 1e-9,
        up_bw=up,
        ring_bw=jnp.where(mesh, 2.0 * up, up),
        out_bw=net.scaleout_bytes_per_s / net.oversubscription,
        up_lat=net.scaleup_latency_s,
        out_lat=net.scaleout_latency_s,
        mesh=mesh,
        nvls=(_f(net.switch_reduction) > 0.5) & ~mesh,
        nvls_ratio=net.switch_reduction_ratio,
    )


def _flat(L: _Levels, inner_bw):
    """Bottleneck bandwidth and step latency of one ring/tree over the whole group,
    each step paced by its slowest hop."""
    only_out = L.m <= 1.0 + 1e-9
    bw = jnp.where(
        L.spans, jnp.where(only_out, L.out_bw, jnp.minimum(inner_bw, L.out_bw)), inner_bw
    )
    return bw, _flat_latency(L)


def _flat_latency(L: _Levels):
    only_out = L.m <= 1.0 + 1e-9
    return jnp.where(
        L.spans, jnp.where(only_out, L.out_lat, jnp.maximum(L.up_lat, L.out_lat)), L.up_lat
    )


def _ring(kind, N, L: _Levels):
    """Rail-aligned multi-channel ring (NCCL): ``m`` rings, each leaving a domain through
    a different member's NIC, so per step a member sends ``1/m`` of its chunk over its NIC
    and ``(m-1)/m`` over the scale-up link:
    ``1/B = max(1/(m B_o), (m-1)/(m B_ring))`` when the group spans domains."""
    inv = jnp.maximum(1.0 / (L.m * L.out_bw), (L.m - 1.0) / (L.m * L.ring_bw))
    bw = jnp.where(L.spans, 1.0 / inv, L.ring_bw)
    return ring_time_s(kind, N, L.g, bw, _flat_latency(L))


def _flat_ring(kind, N, L: _Levels):
    bw, lat = _flat(L, L.ring_bw)
    return ring_time_s(kind, N, L.g, bw, lat)


def _tree(N, L: _Levels):
    bw, _ = _flat(L, L.up_bw)
    lat = 2.0 * (_ceil_log2(L.d) * L.out_lat + _ceil_log2(L.m) * L.up_lat)
    return jnp.where(L.g > 1.0, lat + 2.0 * N / bw, 0.0)


def _two_level(kind, N, L: _Levels, inner_lat):
    """Inner RS (bandwidth term ``(1-1/m) N / B_ring``, latency ``inner_lat``), ring
    over the ``d`` domains on the share ``N/m``, inner AG; pipelined over chunks, so the
    scale-up and scale-out links work at the same time: bandwidth terms take the max,
    latencies add."""
    inner_bw = (1.0 - 1.0 / L.m) * N / L.ring_bw
    one_out = (L.d - 1.0) / L.d * (N / L.m) / L.out_bw
    out_lat = (L.d - 1.0) * L.out_lat
    if kind == "all_reduce":
        return jnp.maximum(2.0 * inner_bw, 2.0 * one_out) + 2.0 * inner_lat + 2.0 * out_lat
    return jnp.maximum(inner_bw, one_out) + inner_lat + out_lat


def _hierarchical(kind, N, L: _Levels):
    ring_lat = (L.m - 1.0) * L.up_lat
    mesh_lat = 2.0 * (jnp.sqrt(L.m) - 1.0) * L.up_lat
    return _two_level(kind, N, L, jnp.where(L.mesh, mesh_lat, ring_lat))


def _mesh2d(kind, N, L: _Levels):
    return _two_level(kind, N, L, 2.0 * (jnp.sqrt(L.m) - 1.0) * L.up_lat)


def _nvls(N, L: _Levels):
    """In-network all-reduce (NVLink SHARP): every member sends its buffer once into the
    switch, which reduces it, and receives the result once by multicast, so each
    direction carries ``N``: ``T_in = N / (r * B_u) + 2 a_u`` with ``r`` the network's
    ``switch_reduction_ratio`` (the catalog's 0.76: ESTIMATE fitted to nccl-tests
    all_reduce_perf on 8x H100 SXM with NVLS, 460-480 GB/s bus bandwidth) (vs the ring's
    ``2 (m-1)/m N / B_u``). Across domains it is pipelined with a ring over the domains
    on the share ``N/m``, as in **hierarchical**."""
    inner = jnp.where(L.m > 1.0, N / (L.nvls_ratio * L.up_bw), 0.0)
    inner_lat = jnp.where(L.m > 1.0, 2.0 * L.up_lat, 0.0)
    outer = 2.0 * (L.d - 1.0) / L.d * (N / L.m) / L.out_bw
    t = jnp.maximum(inner, outer) + inner_lat + 2.0 * (L.d - 1.0) * L.out_lat
    return jnp.where(L.g > 1.0, jnp.where(L.nvls, t, jnp.inf), 0.0)


def _all_to_all(N, L: _Levels):
    local = N * L.m / L.g  # bytes for members of the own domain
    k = jnp.sqrt(L.m)
    t_mesh = jnp.where(L.m > 1.0, k * local / (4.0 * L.up_bw), 0.0)
    t_switch = N * (L.m - 1.0) / L.g / L.up_bw
    t_in = jnp.where(L.mesh, t_mesh, t_switch)
    t_out = N * (L.g - L.m) / L.g / L.out_bw
    lat = (L.m - 1.0) * L.up_lat + (L.g - L.m) * L.out_lat
    return jnp.maximum(t_in, t_out) + lat


def _send_recv(N, L: _Levels):
    t = jnp.where(L.spans, L.out_lat + N / L.out_bw, L.up_lat + N / L.up_bw)
    return jnp.where(L.g > 1.0, t, 0.0)


def _candidates(kind: str, N, L: _Levels) -> dict[str, jnp.ndarray]:
    if kind == "all_to_all":
        return {"direct": _all_to_all(N, L)}
    if kind == "send_recv":
        return {"direct": _send_recv(N, L)}
    out = {"ring": _ring(kind, N, L), "flat_ring": _flat_ring(kind, N, L)}
    if kind == "all_reduce":
        out["tree"] = _tree(N, L)
    out["hierarchical"] = _hierarchical(kind, N, L)
    out["mesh2d"] = _mesh2d(kind, N, L)
    if kind == "all_reduce":
        out["nvls"] = _nvls(N, L)
    return out


def algorithm_times_s(
    kind: str, nbytes, group_size, net: Network, members_per_domain=None
) -> dict[str, jnp.ndarray]:
    """Time (s) of every algorithm valid for ``kind`` (see the module docstring).

    ``mesh2d`` on a switched network is the 2-D ring; it is excluded from ``auto`` there.
    """
    _check_call(kind, "auto", nbytes, group_size, net, members_per_domain)
    every = _times(kind, nbytes, group_size, net, members_per_domain)[0]
    # a compiled program returns its dict sorted by key: report in ALGORITHMS order
    return {k: every[k] for k in ALGORITHMS if k in every}


@functools.partial(jax.jit, static_argnames=("kind",))
def _times(kind: str, nbytes, group_size, net: Network, members_per_domain):
    """Every algorithm's time, the ones ``auto`` picks among, and their hard and soft
    minimum, as one compiled program per ``kind`` and input structure (eagerly, the
    few dozen array ops here were one program each)."""
    L = _levels(group_size, net, members_per_domain)
    N = _f(nbytes)
    cands = _auto_candidates(kind, N, L)
    return (
        _candidates(kind, N, L),
        cands,
        hard_min(list(cands.values())),
        smooth_min(list(cands.values())),
    )


def collective_time_s(
    kind: str, nbytes, group_size, net: Network, members_per_domain=None, algorithm: str = "auto"
):
    """Time of one collective on ``net``, s.

    Args:
      kind: ``all_reduce``, ``reduce_scatter``, ``all_gather``, ``all_to_all`` or
        ``send_recv``.
      nbytes: full buffer size per member, byte (all-gather: the output; reduce-scatter:
        the input; all-to-all: the data each member scatters).
      group_size: members ``g`` (integer-valued, >= 1).
      net: the :class:`Network`.
      members_per_domain: members sharing one scale-up domain, in
        ``[1, min(g, domain_size)]``; default ``min(g, domain_size)`` (the group packed
        into as few domains as possible).
      algorithm: ``auto`` (hard minimum over the valid algorithms), ``smooth`` (soft
        minimum, for gradients), or one of :data:`VALID_ALGORITHMS` ``[kind]``.

    Returns:
      Time in s, broadcast over the array arguments. jit/vmap/grad-friendly in
      ``nbytes``, ``group_size``, ``members_per_domain`` and every leaf of ``net``
      (inputs are validated only when concrete, i.e. before tracing).

    Example::

        >>> net = Network.create(450e9, 0.0, 50e9, 0.0, domain_size=8)
        >>> float(collective_time_s("all_reduce", 1e9, 8, net, algorithm="ring"))  # 2 * 7/8 * 1e9 / 450e9
        0.003888...
    """
    _check_call(kind, algorithm, nbytes, group_size, net, members_per_domain)
    every, _, hard, smooth = _times(kind, nbytes, group_size, net, members_per_domain)
    if algorithm in ("auto", "smooth"):
        return smooth if algorithm == "smooth" else hard
    return every[algorithm]


def _auto_candidates(kind: str, N, L: _Levels) -> dict[str, jnp.ndarray]:
    """The algorithms ``auto`` chooses among, without duplicates: ``flat_ring`` is never
    faster than ``ring``; on a mesh ``hierarchical`` is ``mesh2d``; inside one switched
    domain ``hierarchical`` equals ``ring`` (dropped so the soft minimum is not biased)."""
    c = _candidates(kind, N, L)
    if "ring" not in c:
        return c
    out = {"ring": c["ring"]}
    if "tree" in c:
        out["tree"] = c["tree"]
    out["hierarchical"] = jnp.where(L.spans | L.mesh, c["hierarchical"], jnp.inf)
    if "nvls" in c:
        out["nvls"] = jnp.where(L.m > 1.0, c["nvls"], jnp.inf)
    return out


def best_algorithm(
    kind: str, nbytes: float, group_size: float, net: Network, members_per_domain=None
) -> str:
    """Name of the algorithm ``auto`` picks (concrete scalars only), for reports."""
    _check_call(kind, "auto", nbytes, group_size, net, members_per_domain)
    cands = _times(kind, nbytes, group_size, net, members_per_domain)[1]
    times = {k: float(np.asarray(v)) for k, v in cands.items()}
    best = min(times, key=lambda k: times[k])
    if best == "hierarchical" and float(np.asarray(net.mesh)) > 0.5:
        return "mesh2d"
    return best


def point_to_point_time_s(nbytes, net: Network, same_domain: bool = True):
    """One message between two chips, s: ``a + N / B`` over the scale-up link (one
    edge on a mesh; neighbours assumed adjacent) when ``same_domain``, else over the
    scale-out link with its taper."""
    return collective_time_s(
        "send_recv", nbytes, 2.0, net, members_per_domain=2.0 if same_domain else 1.0
    )


def bus_bandwidth_bytes_per_s(kind: str, nbytes, group_size, time_s):
    """NCCL-tests "bus bandwidth" of a measured or modelled collective, byte/s:
    ``busbw = N / T * f`` with ``f = 2 (g-1)/g`` (all-reduce), ``(g-1)/g``
    (reduce-scatter, all-gather, all-to-all), 1 (send/recv). Comparable to link rates."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {KINDS}")
    return _bus_bandwidth(kind, nbytes, group_size, time_s)


@functools.partial(jax.jit, static_argnames=("kind",))
def _bus_bandwidth(kind: str, nbytes, group_size, time_s):
    g = _f(group_size)
    f = {
        "all_reduce": 2.0 * (g - 1.0) / g,
        "reduce_scatter": (g - 1.0) / g,
        "all_gather": (g - 1.0) / g,
        "all_to_all": (g - 1.0) / g,
        "send_recv": 1.0,
    }
    return _f(nbytes) / time_s * f[kind]
