"""Properties and hand values of the collective models in perfmodel.interconnect."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel.hardware import CatalogError
from perfmodel.interconnect import (
    KINDS,
    SMOOTH_P,
    VALID_ALGORITHMS,
    Network,
    best_algorithm,
    bus_bandwidth_bytes_per_s,
    collective_time_s,
    describe,
    network_for,
    point_to_point_time_s,
    smooth_min,
    topology_for,
)

ALL_PAIRS = [(k, a) for k in KINDS for a in VALID_ALGORITHMS[k] + ("auto", "smooth")]
DOMAINS = (1, 2, 4, 8, 9, 16, 72)


@st.composite
def networks(draw, latency=True):
    lat = st.floats(0.0, 1e-5) if latency else st.just(0.0)
    return Network.create(
        scaleup_bytes_per_s=draw(st.floats(1e9, 1e13)),
        scaleup_latency_s=draw(lat),
        scaleout_bytes_per_s=draw(st.floats(1e8, 1e12)),
        scaleout_latency_s=draw(lat),
        domain_size=draw(st.sampled_from(DOMAINS)),
        oversubscription=draw(st.floats(1.0, 4.0)),
        mesh=draw(st.booleans()),
        switch_reduction=draw(st.booleans()),
    )


@st.composite
def groups(draw, net):
    """(group_size, members_per_domain) with members_per_domain dividing the group."""
    dom = int(net.domain_size)
    m = draw(st.integers(1, dom))
    d = draw(st.integers(1, 16))
    return m * d, m


def T(kind, n, g, net, m=None, alg="auto"):
    return float(collective_time_s(kind, n, g, net, m, alg))


def _vec(n, g, m, net):
    return jnp.stack([collective_time_s(k, n, g, net, m, a) for k, a in ALL_PAIRS])


_VEC = jax.jit(_vec)  # every (kind, algorithm) at once, compiled once per module


def V(n, g, m, net):
    return np.asarray(_VEC(n, g, m, net))


def _scaled(net, **factors):
    return net.replace(**{k: getattr(net, k) * f for k, f in factors.items()})


_IDX = {p: i for i, p in enumerate(ALL_PAIRS)}
_PAIRS_NO_SMOOTH = np.array([a != "smooth" for _, a in ALL_PAIRS])


# --------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------


@given(st.data(), networks(), st.floats(0.0, 1e10))
def test_all_reduce_is_reduce_scatter_plus_all_gather(data, net, n):
    g, m = data.draw(groups(net))
    t = V(n, g, m, net)
    for alg in ("ring", "flat_ring", "hierarchical", "mesh2d"):
        ar = t[_IDX["all_reduce", alg]]
        rs = t[_IDX["reduce_scatter", alg]]
        ag = t[_IDX["all_gather", alg]]
        assert ar == pytest.approx(rs + ag, rel=1e-12, abs=1e-18), alg


@given(st.integers(2, 4096), st.floats(1e9, 1e13), st.floats(1e3, 1e12))
def test_ring_all_reduce_approaches_two_bytes_over_bandwidth(g, bw, n):
    """Latency 0, one domain: T = 2 (g-1)/g N / bw, within 1/g below 2 N / bw."""
    net = Network.create(bw, 0.0, bw / 10, 0.0, domain_size=g)
    t = T("all_reduce", n, g, net, alg="ring")
    limit = 2.0 * n / bw
    assert limit * (1.0 - 1.0 / g) * (1 - 1e-12) <= t <= limit
    assert t == pytest.approx(limit * (g - 1) / g, rel=1e-12)


@given(st.data(), networks(), st.floats(0.0, 1e10))
def test_hierarchical_never_slower_than_flat_ring(data, net, n):
    g, m = data.draw(groups(net))
    t = V(n, g, m, net)
    for kind in ("all_reduce", "reduce_scatter", "all_gather"):
        h, f = t[_IDX[kind, "hierarchical"]], t[_IDX[kind, "flat_ring"]]
        assert h <= f * (1 + 1e-12) + 1e-18, kind


@given(st.data(), networks(), st.floats(1.0, 100.0), st.floats(1.0, 10.0), st.floats(0.0, 1e10))
def test_hierarchical_beats_ring_when_inner_links_much_faster(data, net, ratio, lat_ratio, n):
    """With ``B_ring >= m g/(g-1) B_o`` (the inner links carry more than the NICs can) and
    ``a_u <= a_o`` the hierarchical algorithm is never slower than the multi-channel ring
    (for a switched domain)."""
    net = net.replace(mesh=jnp.asarray(0.0))
    g, m = data.draw(groups(net))
    out = float(net.scaleout_bytes_per_s / net.oversubscription)
    up = max(float(net.scaleup_bytes_per_s), ratio * m * g / max(g - 1, 1) * out)
    net = net.replace(
        scaleup_bytes_per_s=jnp.asarray(up), scaleout_latency_s=net.scaleup_latency_s * lat_ratio
    )
    t = V(n, g, m, net)
    for kind in ("all_reduce", "reduce_scatter", "all_gather"):
        assert t[_IDX[kind, "hierarchical"]] <= t[_IDX[kind, "ring"]] * (1 + 1e-12) + 1e-18


@given(st.data(), networks(), st.floats(0.0, 1e10))
def test_auto_is_the_minimum_and_smooth_is_within_its_bound(data, net, n):
    g, m = data.draw(groups(net))
    t = V(n, g, m, net)
    for kind in KINDS:
        auto, smooth = t[_IDX[kind, "auto"]], t[_IDX[kind, "smooth"]]
        valid = {
            a: t[_IDX[kind, a]]
            for a in VALID_ALGORITHMS[kind]
            if not (a == "mesh2d" and float(net.mesh) < 0.5)
        }
        assert auto == pytest.approx(min(valid.values()), rel=1e-12, abs=1e-18)
        assert auto * 4 ** (-1 / SMOOTH_P) * (1 - 1e-12) <= smooth <= auto * (1 + 1e-12)


# --------------------------------------------------------------------------------------
# Monotonicity
# --------------------------------------------------------------------------------------


@given(st.data(), networks(), st.floats(1.0, 8.0), st.floats(0.0, 1e10))
def test_more_bandwidth_never_slows_anything(data, net, factor, n):
    g, m = data.draw(groups(net))
    faster = (
        _scaled(net, scaleup_bytes_per_s=factor),
        _scaled(net, scaleout_bytes_per_s=factor),
        _scaled(net, scaleup_bytes_per_s=factor, scaleout_bytes_per_s=factor),
        net.replace(oversubscription=jnp.maximum(1.0, net.oversubscription / factor)),
    )
    base = V(n, g, m, net)
    for fast in faster:
        assert np.all(V(n, g, m, fast) <= base * (1 + 1e-12) + 1e-18)


@given(st.data(), networks(), st.floats(1.0, 8.0), st.floats(0.0, 1e-5), st.floats(0.0, 1e10))
def test_more_latency_never_speeds_anything(data, net, factor, add, n):
    g, m = data.draw(groups(net))
    slower = (
        net.replace(scaleup_latency_s=net.scaleup_latency_s * factor + add),
        net.replace(scaleout_latency_s=net.scaleout_latency_s * factor + add),
    )
    base = V(n, g, m, net)
    for slow in slower:
        assert np.all(V(n, g, m, slow) >= base * (1 - 1e-12))


@given(st.data(), networks(), st.floats(0.0, 1e10), st.floats(1.0, 100.0))
def test_time_non_decreasing_in_bytes(data, net, n, factor):
    g, m = data.draw(groups(net))
    assert np.all(V(n * factor, g, m, net) >= V(n, g, m, net) * (1 - 1e-12))


@given(networks(), st.floats(0.0, 1e12))
def test_group_of_one_costs_nothing(net, n):
    assert np.all(V(n, 1.0, 1.0, net) == 0.0)
    assert T("all_reduce", n, 1, net) == 0.0 and T("send_recv", n, 1, net) == 0.0


@given(st.data(), networks(latency=False), st.floats(1.0, 1e10), st.floats(0.01, 100.0))
def test_homogeneous_in_bytes_without_latency(data, net, n, c):
    g, m = data.draw(groups(net))
    np.testing.assert_allclose(
        V(c * n, g, m, net)[_PAIRS_NO_SMOOTH], c * V(n, g, m, net)[_PAIRS_NO_SMOOTH], rtol=1e-9
    )


@given(st.data(), networks(), st.floats(1.0, 4.0), st.floats(0.0, 1e10))
def test_oversubscription_is_a_scale_out_taper(data, net, k, n):
    g, m = data.draw(groups(net))
    tapered = net.replace(oversubscription=net.oversubscription * k)
    slower_nic = _scaled(net, scaleout_bytes_per_s=1.0 / k)
    np.testing.assert_allclose(V(n, g, m, tapered), V(n, g, m, slower_nic), rtol=1e-9)


# --------------------------------------------------------------------------------------
# Hand-computed values
# --------------------------------------------------------------------------------------

H100_NOMINAL = Network.create(450e9, 1e-6, 50e9, 2e-6, domain_size=8)


def test_hand_value_ring_all_reduce_on_8_h100():
    no_lat = Network.create(450e9, 0.0, 50e9, 0.0, domain_size=8)
    assert T("all_reduce", 1e9, 8, no_lat, alg="ring") == pytest.approx(
        2 * 7 / 8 * 1e9 / 450e9, rel=1e-14
    )
    assert 2 * 7 / 8 * 1e9 / 450e9 == pytest.approx(3.889e-3, abs=1e-6)
    # with latency: 14 steps of 1 us
    assert T("all_reduce", 1e9, 8, H100_NOMINAL, alg="ring") == pytest.approx(
        3.888889e-3 + 14e-6, rel=1e-6
    )


def test_hand_values_across_nodes():
    net, n = H100_NOMINAL, 1e9
    # hierarchical on 8 nodes: max(NVLink RS+AG, IB ring on N/8) + latencies
    want = max(2 * 7 / 8 * n / 450e9, 2 * 7 / 8 * (n / 8) / 50e9) + 2 * 7 * 1e-6 + 2 * 7 * 2e-6
    assert T("all_reduce", n, 64, net, alg="hierarchical") == pytest.approx(want, rel=1e-12)
    # NCCL-style ring: 1/B = max(1/(8*50e9), 7/(8*450e9)) -> 400 GB/s, 2 us per step
    want = 2 * 63 / 64 * n / 400e9 + 2 * 63 * 2e-6
    assert T("all_reduce", n, 64, net, alg="ring") == pytest.approx(want, rel=1e-12)
    # flat ring paced by the NIC
    want = 2 * 63 / 64 * n / 50e9 + 2 * 63 * 2e-6
    assert T("all_reduce", n, 64, net, alg="flat_ring") == pytest.approx(want, rel=1e-12)
    # tree: log2(8) IB levels + log2(8) NVLink levels, 2 N over the slowest hop
    want = 2 * (3 * 2e-6 + 3 * 1e-6) + 2 * n / 50e9
    assert T("all_reduce", n, 64, net, alg="tree") == pytest.approx(want, rel=1e-12)
    # one member per node (TP = 8 fills the node): pure IB ring
    want = 2 * 7 / 8 * n / 50e9 + 2 * 7 * 2e-6
    assert T("all_reduce", n, 8, net, 1, "ring") == pytest.approx(want, rel=1e-12)
    # all-to-all over 2 nodes: 7/16 of the data on NVLink, 8/16 on IB, pairwise rounds
    want = max(n * 7 / 16 / 450e9, n * 8 / 16 / 50e9) + 7 * 1e-6 + 8 * 2e-6
    assert T("all_to_all", n, 16, net) == pytest.approx(want, rel=1e-12)
    # send/recv
    assert T("send_recv", n, 2, net) == pytest.approx(1e-6 + n / 450e9, rel=1e-12)
    assert float(point_to_point_time_s(n, net, same_domain=False)) == pytest.approx(
        2e-6 + n / 50e9, rel=1e-12
    )


def test_hand_values_dojo_mesh():
    e, a = 9e12, 0.1e-6
    mesh = Network.create(e, a, 167e9, 1.3e-6, domain_size=120, mesh=True)
    n = 1e9
    # 2 x 2 tiles: RS = (1 - 1/4) N / (2 e) + 2 (2 - 1) a
    rs = 0.75 * n / (2 * e) + 2 * a
    assert T("reduce_scatter", n, 4, mesh, alg="mesh2d") == pytest.approx(rs, rel=1e-12)
    assert T("all_reduce", n, 4, mesh, alg="mesh2d") == pytest.approx(2 * rs, rel=1e-12)
    # snake ring on the mesh: same bandwidth term, m - 1 = 3 latency steps per pass
    assert T("all_reduce", n, 4, mesh, alg="ring") == pytest.approx(
        2 * (0.75 * n / (2 * e) + 3 * a), rel=1e-12
    )
    # 16 tiles (4 x 4): the 2-D algorithm wins on latency, auto picks it
    assert T("all_reduce", n, 16, mesh) < T("all_reduce", n, 16, mesh, alg="ring")
    assert best_algorithm("all_reduce", 1e6, 16, mesh) in ("mesh2d", "tree")
    assert best_algorithm("all_reduce", 1e9, 16, mesh) == "mesh2d"
    # all-to-all on 4 x 4 tiles: bisection of 4 edges, k N / (4 e)
    assert T("all_to_all", n, 16, mesh) == pytest.approx(4 * n / (4 * e) + 15 * a, rel=1e-12)


def test_hand_values_nvls():
    from perfmodel.interconnect import NVLS_RATIO

    net = Network.create(360e9, 1e-6, 45e9, 2e-6, domain_size=8, switch_reduction=True)
    n = 1e9
    assert T("all_reduce", n, 8, net, alg="nvls") == pytest.approx(
        n / (NVLS_RATIO * 360e9) + 2e-6, rel=1e-12
    )
    assert best_algorithm("all_reduce", n, 8, net) == "nvls"
    # NVLS bus bandwidth on 8 GPUs lands on the nccl-tests figure it was fitted to
    busbw = float(bus_bandwidth_bytes_per_s("all_reduce", n, 8, T("all_reduce", n, 8, net)))
    assert 455e9 <= busbw <= 485e9
    # across 8 domains: pipelined with the IB ring on N/8
    want = max(n / (NVLS_RATIO * 360e9), 2 * 7 / 8 * (n / 8) / 45e9) + 2e-6 + 2 * 7 * 2e-6
    assert T("all_reduce", n, 64, net, alg="nvls") == pytest.approx(want, rel=1e-12)
    assert T("all_reduce", n, 1, net, alg="nvls") == 0.0
    # off by default; asking for it where the switch cannot reduce is an error
    assert float(network_for("h100").switch_reduction) == 0.0
    assert float(network_for("h100", switch_reduction=True).switch_reduction) == 1.0
    with pytest.raises(ValueError, match="switch_reduction=True needs"):
        network_for("mi300x", switch_reduction=True)
    with pytest.raises(ValueError, match="algorithm 'nvls' needs"):
        collective_time_s("all_reduce", n, 8, H100_NOMINAL, algorithm="nvls")


def test_bus_bandwidth_of_a_ring_is_the_link_rate():
    net = Network.create(450e9, 0.0, 50e9, 0.0, domain_size=8)
    t = collective_time_s("all_reduce", 1e9, 8, net, algorithm="ring")
    assert float(bus_bandwidth_bytes_per_s("all_reduce", 1e9, 8, t)) == pytest.approx(450e9)


# --------------------------------------------------------------------------------------
# JAX transforms
# --------------------------------------------------------------------------------------

GRAD_PAIRS = [("all_reduce", a) for a in VALID_ALGORITHMS["all_reduce"] + ("auto", "smooth")] + [
    ("reduce_scatter", "hierarchical"),
    ("all_to_all", "direct"),
    ("send_recv", "direct"),
]
_GRAD_IDX = np.array([_IDX[p] for p in GRAD_PAIRS])


def _vec_grad(n, g, m, net):
    return jnp.stack([collective_time_s(k, n, g, net, m, a) for k, a in GRAD_PAIRS])


_GRAD = jax.jit(jax.jacfwd(_vec_grad, argnums=3))


@pytest.mark.parametrize("n, g, m", [(3e8, 64, 8), (5e7, 12, 3), (2e6, 16, 8)])
def test_gradients_match_finite_differences(n, g, m):
    base = Network.create(360e9, 1.3e-6, 45e9, 2.7e-6, domain_size=8, switch_reduction=True)
    jac = _GRAD(n, g, m, base)
    nonzero = 0
    for field in (
        "scaleup_bytes_per_s",
        "scaleout_bytes_per_s",
        "scaleup_latency_s",
        "scaleout_latency_s",
    ):
        x0 = float(getattr(base, field))
        h = x0 * 1e-6
        up = V(n, g, m, base.replace(**{field: jnp.asarray(x0 + h)}))
        dn = V(n, g, m, base.replace(**{field: jnp.asarray(x0 - h)}))
        fd = (up - dn)[_GRAD_IDX] / (2 * h)
        grad = np.asarray(getattr(jac, field))
        scale = V(n, g, m, base)[_GRAD_IDX] / x0
        np.testing.assert_allclose(
            grad, fd, rtol=1e-5, atol=1e-9 * float(scale.max()), err_msg=field
        )
        nonzero += int(np.sum(grad != 0.0))
    assert nonzero > 10  # the derivative is non-trivial for many (kind, algorithm) pairs


def test_gradient_of_smooth_auto_is_finite_at_ties_and_zero():
    net = Network.create(450e9, 0.0, 450e9, 0.0, domain_size=8)
    g = jax.grad(
        lambda b: collective_time_s(
            "all_reduce", 1e9, 64, net.replace(scaleout_bytes_per_s=b), algorithm="smooth"
        )
    )(450e9)
    assert np.isfinite(float(g)) and float(g) < 0
    z = jax.grad(lambda n: collective_time_s("all_reduce", n, 1, net, algorithm="smooth"))(0.0)
    assert float(z) == 0.0
    assert float(smooth_min([jnp.asarray(0.0), jnp.asarray(1.0)])) == 0.0


def test_jit_vmap_over_sizes_equals_loop():
    _batched = jax.jit(jax.vmap(lambda n, g: collective_time_s("all_reduce", n, g, H100_NOMINAL)))
    sizes = jnp.logspace(0, 11, 23)
    gs = jnp.asarray([1, 2, 8, 16, 64, 512, 4096] * 3 + [8, 64], dtype=float)
    got = np.asarray(_batched(sizes, gs))
    want = [T("all_reduce", float(s), float(g), H100_NOMINAL) for s, g in zip(sizes, gs)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_vmap_over_networks():
    nets = jax.tree_util.tree_map(
        lambda *x: jnp.stack(x), network_for("h100"), network_for("gb200"), network_for("dojo_tile")
    )
    got = jax.vmap(lambda net: collective_time_s("all_reduce", 1e9, 512, net))(nets)
    want = [T("all_reduce", 1e9, 512, network_for(c)) for c in ("h100", "gb200", "dojo_tile")]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="broadcast"), "kind 'broadcast' must be one of"),
        (dict(algorithm="tree", kind="all_gather"), "algorithm 'tree' is not valid for all_gather"),
        (dict(algorithm="butterfly"), "allowed"),
        (dict(group_size=0), r"group_size = 0.0 must be an integer in \[1, inf\)"),
        (dict(group_size=2.5), "group_size = 2.5"),
        (dict(nbytes=-1.0), r"nbytes = -1.0 must be finite and in \[0, inf\)"),
        (dict(nbytes=math.inf), "nbytes = inf"),
        (dict(nbytes=math.nan), "nbytes = nan"),
        (dict(members_per_domain=16), r"members_per_domain = 16 must be in \[1, .*\] = \[1, 8\]"),
        (dict(members_per_domain=0), "members_per_domain = 0.0"),
        (
            dict(net=H100_NOMINAL.replace(scaleup_bytes_per_s=jnp.asarray(0.0))),
            r"scaleup_bytes_per_s = 0.0 must be finite and in \(0, inf\)",
        ),
        (
            dict(net=H100_NOMINAL.replace(oversubscription=jnp.asarray(0.5))),
            "oversubscription = 0.5",
        ),
        (dict(net=H100_NOMINAL.replace(mesh=jnp.asarray(0.5))), "mesh"),
        (dict(net="dgx"), "net must be a Network"),
    ],
)
def test_bad_input_raises_value_error_naming_the_field(kwargs, match):
    args = dict(
        kind="all_reduce",
        nbytes=1e9,
        group_size=64,
        net=H100_NOMINAL,
        members_per_domain=None,
        algorithm="auto",
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        collective_time_s(**args)


# --------------------------------------------------------------------------------------
# Topologies from the catalog
# --------------------------------------------------------------------------------------


def test_network_for_catalog_systems():
    h = topology_for("h100")
    assert (h.system, h.domain_size, h.mesh) == ("dgx_h100", 8, False)
    assert h.scaleup_nominal_bytes_per_s == 450e9 and h.scaleout_nominal_bytes_per_s == 50e9
    net = network_for("h100_sxm")
    assert float(net.scaleup_bytes_per_s) == pytest.approx(450e9 * h.scaleup_efficiency)
    nominal = network_for("h100", scaleup_efficiency=1.0, scaleout_efficiency=1.0)
    assert float(nominal.scaleup_bytes_per_s) == 450e9
    assert float(nominal.scaleout_bytes_per_s) == 50e9
    g = topology_for("gb200")
    assert (g.domain_size, g.mesh, g.scaleup_nominal_bytes_per_s) == (72, False, 900e9)
    assert topology_for("mi300x").mesh is False  # full mesh counts as switched
    d = topology_for("dojo_tile")
    assert d.mesh and d.scaleup_nominal_bytes_per_s == 9e12  # per edge, not 4 x 9 TB/s
    assert d.domain_size >= 6
    tray = topology_for("dojo_tile", system="dojo_system_tray")
    assert tray.domain_size == 6 and tray.mesh
    for chip in ("a100_80gb", "h200", "b200", "d1", "hw3", "ai4"):
        net = network_for(chip)
        assert float(net.scaleup_bytes_per_s) > 0 and float(net.scaleout_bytes_per_s) > 0


def test_network_for_oversubscription_and_errors():
    a = T("all_reduce", 1e9, 1024, network_for("h100"))
    b = T("all_reduce", 1e9, 1024, network_for("h100", oversubscription=4.0))
    assert b > a
    with pytest.raises(CatalogError, match="unknown chip"):
        network_for("tpu_v9")
    with pytest.raises(ValueError, match="oversubscription = 0.5"):
        network_for("h100", oversubscription=0.5)
    with pytest.raises(ValueError, match="built from chip"):
        network_for("h100", system="gb200_nvl72")
    with pytest.raises(ValueError, match="scaleup_efficiency = 1.5"):
        network_for("h100", scaleup_efficiency=1.5)


def test_low_and_high_picks_change_the_network():
    t = {p: T("all_reduce", 1e6, 512, network_for("h100", pick=p)) for p in ("low", "best", "high")}
    # low = low efficiency and low latency, high = both high
    assert t["low"] != t["high"]
    assert all(np.isfinite(list(t.values())))


def test_describe_mentions_links_sources_and_times():
    text = describe(topology_for("h100"))
    assert "dgx_h100" in text and "nvlink4" in text and "ib_ndr" in text
    assert "sources:" in text and "all_reduce" in text
    assert "2-D mesh" in describe(topology_for("dojo_tile"), provenance=False)


def test_cli_net_json_and_errors(capsys):
    import json

    from perfmodel.cli import main

    assert (
        main(
            [
                "net",
                "h100",
                "--json",
                "--group",
                "8,64",
                "--bytes",
                "1e9",
                "--kind",
                "all_reduce",
                "--nominal",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["system"] == "dgx_h100" and out["scaleup"]["efficiency"] == 1.0
    r8 = out["results"][0]
    assert r8["group_size"] == 8 and r8["algorithm"] == "ring"
    assert r8["time_s"] == pytest.approx(2 * 7 / 8 * 1e9 / 450e9 + 14e-6, rel=1e-9)
    assert set(r8["algorithms_s"]) == set(VALID_ALGORITHMS["all_reduce"]) - {"nvls"}
    assert main(["net", "dojo_tile", "--group", "16", "--bytes", "1e6"]) == 0
    text = capsys.readouterr().out
    assert "2-D mesh" in text and "mesh2d" in text
    assert main(["net", "h100", "--oversubscription", "0.5"]) == 2
    assert "oversubscription = 0.5" in capsys.readouterr().err
    assert main(["net", "tpu_v9"]) == 2


# --------------------------------------------------------------------------------------
# Link figures come only from the catalog
# --------------------------------------------------------------------------------------

# Values the model gave before the link table moved from interconnect.py into the catalog
# (pinned to 1e-9): (chip, pick, nvls, oversubscription, kind, algorithm, group, bytes).
PINNED = [
    (("h100", "low", False, 1.0, "all_reduce", "auto", 64, 1e9), 0.006523481481481482),
    (("h100", "high", True, 1.0, "all_reduce", "nvls", 64, 1e9), 0.004680263157894737),
    (("a100", "best", False, 2.5, "all_reduce", "ring", 64, 1e9), 0.02759575),
    (("gb200", "best", True, 1.0, "all_reduce", "auto", 576, 1e9), 0.0018574853801169593),
    (("mi300x", "low", False, 1.0, "all_to_all", "direct", 64, 1e6), 0.00014233333333333331),
    (("dojo_tile", "best", False, 1.0, "all_reduce", "mesh2d", 120, 1e9), 0.00014171326194152282),
    (("d1", "high", False, 1.0, "reduce_scatter", "auto", 200, 1e9), 0.003651247422680412),
    (("hw3", "high", False, 1.0, "all_reduce", "auto", 16, 1e6), 0.006017777777777777),
    (("host_cpu", "low", False, 1.0, "send_recv", "direct", 8, 1e6), 0.0001172857142857143),
    (("dojo_dip", "best", False, 1.0, "all_reduce", "tree", 8, 1e6), 5.644444444444445e-05),
    (("ai4", "best", False, 1.0, "all_gather", "hierarchical", 16, 1e9), 1.0004000000000002),
]


@pytest.mark.parametrize("case, want", PINNED)
def test_collective_times_pinned(case, want):
    chip, pick, nvls, over, kind, alg, g, n = case
    net = network_for(chip, pick=pick, switch_reduction=nvls, oversubscription=over)
    assert T(kind, n, g, net, alg=alg) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    "chip, nvls, want",
    [
        ("a100", False, 239.54008304056213e9),
        ("h100", False, 358.9661774090619e9),
        ("h100", True, 478.5381439276428e9),
        ("gb200", True, 956.5531482345721e9),
        ("mi300x", False, 312.4242849309478e9),
    ],
)
def test_nccl_tests_bus_bandwidth_on_8_gpus(chip, nvls, want):
    """1 GB all-reduce on one 8-GPU domain (nccl-tests busbw: A100 ~240 GB/s, H100 ~360
    GB/s without NVLS and ~479 GB/s with it)."""
    net = network_for(chip, switch_reduction=nvls)
    t = T("all_reduce", 1e9, 8, net)
    assert float(bus_bandwidth_bytes_per_s("all_reduce", 1e9, 8, t)) == pytest.approx(
        want, rel=1e-9
    )


def _section_edit(text: str, section: str, key: str, value: str | None) -> str:
    """Set (or with ``value=None`` remove) ``key = value`` in ``[section]`` of TOML text."""
    import re

    head = f"[{section}]\n"
    start = text.index(head) + len(head)
    nxt = re.search(r"^\[", text[start:], re.M)
    end = start + nxt.start() if nxt else len(text)
    body = text[start:end]
    pat = re.compile(rf"^{re.escape(key)} = .*\n", re.M)
    if pat.search(body):
        body = pat.sub("" if value is None else f"{key} = {value}\n", body, count=1)
    else:
        assert value is not None, f"[{section}] has no {key}"
        body = f"{key} = {value}\n" + body
    return text[:start] + body + text[end:]


def _copied_catalog(tmp_path, *edits):
    """The built-in catalog from copies of its files, with ``(section, key, value)`` edits
    to catalog_systems.toml; nothing of the installed catalog is used."""
    from perfmodel.hardware import builtin_catalog_paths, load_catalog

    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in builtin_catalog_paths():
        text = p.read_text()
        if p.name == "catalog_systems.toml":
            for section, key, value in edits:
                text = _section_edit(text, section, key, value)
        q = tmp_path / p.name
        q.write_text(text)
        paths.append(q)
    return load_catalog(*paths, builtin=False)


def test_interconnect_keeps_no_link_table():
    import perfmodel.interconnect as ic

    for name in ("LINK_DEFAULTS", "LINK_ALIASES", "EFFICIENCY_DEFAULTS"):
        assert not hasattr(ic, name), name
    assert ic.NVLS_RATIO == ic.default_switch_reduction_ratio() == pytest.approx(0.76)


def test_every_link_has_its_figures_in_the_catalog():
    from perfmodel.hardware import load_catalog
    from perfmodel.interconnect import FALLBACK_TOPOLOGY

    cat = load_catalog()
    used = {n for fb in FALLBACK_TOPOLOGY.values() for n in fb[1:3]}
    used |= {
        s.text[k]
        for s in cat.systems.values()
        for k in ("link_scaleup", "link_scaleout")
        if k in s.text
    }
    assert used <= set(cat.links)
    for key, link in cat.links.items():
        for f in ("bytes_per_s_per_dir", "latency_s", "efficiency_ratio"):
            assert f in link.figures and link.figures[f].source.strip(), (key, f)
    assert {k for k, lk in cat.links.items() if lk.text.get("switch_reduction")} == {
        "nvlink4",
        "nvlink5",
    }
    assert set(cat.link_defaults) == {
        "scaleup_switched_efficiency_ratio",
        "scaleup_mesh_efficiency_ratio",
        "scaleout_efficiency_ratio",
        "scaleup_latency_s",
        "scaleout_latency_s",
        "switch_reduction_ratio",
    }


def test_copied_catalog_is_the_only_source(tmp_path):
    base = _copied_catalog(tmp_path / "same")
    for chip in ("h100", "gb200", "mi300x", "dojo_tile", "d1", "hw3", "host_cpu", "dojo_dip"):
        assert topology_for(chip, base) == topology_for(chip), chip
    est = '{ best = 0.5, low = 0.4, high = 0.6, source = "test", confidence = "estimate" }'
    cat = _copied_catalog(tmp_path / "eff", ("links.nvlink4", "efficiency_ratio", est))
    t = topology_for("h100", cat)
    assert t.scaleup_efficiency == 0.5
    assert t.provenance["scaleup_efficiency"] == "catalog nvlink4.efficiency_ratio (test)"
    assert topology_for("h100", cat, pick="low").scaleup_efficiency == 0.4
    net = network_for("h100", cat)
    assert float(net.scaleup_bytes_per_s) == 450e9 * 0.5
    assert T("all_reduce", 1e9, 8, net, alg="ring") == pytest.approx(
        2 * 7 / 8 * 1e9 / 225e9 + 14e-6, rel=1e-12
    )
    assert T("all_reduce", 1e9, 8, net) > T("all_reduce", 1e9, 8, network_for("h100"))
    # latency of a link
    lat = '{ best = 7e-6, low = 5e-6, high = 9e-6, source = "test", confidence = "estimate" }'
    cat = _copied_catalog(tmp_path / "lat", ("links.ib_ndr", "latency_s", lat))
    assert float(network_for("h100", cat).scaleout_latency_s) == 7e-6
    # a link without efficiency_ratio takes the class default, also from the catalog
    one = '{ best = 0.7, low = 0.7, high = 0.7, source = "test", confidence = "estimate" }'
    cat = _copied_catalog(
        tmp_path / "cls",
        ("links.nvlink4", "efficiency_ratio", None),
        ("link_defaults", "scaleup_switched_efficiency_ratio", one),
    )
    t = topology_for("h100", cat)
    assert t.scaleup_efficiency == 0.7
    assert t.provenance["scaleup_efficiency"].startswith(
        "catalog link_defaults.scaleup_switched_efficiency_ratio"
    )
    # chips without links (dojo_dip) use [link_defaults] for efficiency and latency
    cat = _copied_catalog(
        tmp_path / "dip",
        ("link_defaults", "scaleout_efficiency_ratio", one),
        (
            "link_defaults",
            "scaleup_latency_s",
            '{ value = 3e-6, source = "test", confidence = "vendor" }',
        ),
    )
    t = topology_for("dojo_dip", cat)
    assert (t.scaleout_efficiency, t.scaleup_latency_s) == (0.7, 3e-6)


def test_copied_catalog_switch_reduction(tmp_path):
    n = 1e9
    ratio = lambda v: f'{{ value = {v}, source = "test", confidence = "vendor" }}'  # noqa: E731
    cat = _copied_catalog(
        tmp_path / "dflt", ("link_defaults", "switch_reduction_ratio", ratio(0.5))
    )
    net = network_for("h100", cat, switch_reduction=True)
    assert float(net.switch_reduction_ratio) == 0.5
    assert T("all_reduce", n, 8, net, alg="nvls") == pytest.approx(
        n / (0.5 * 360e9) + 2e-6, rel=1e-12
    )
    own = _copied_catalog(tmp_path / "own", ("links.nvlink4", "switch_reduction_ratio", ratio(0.9)))
    t = topology_for("h100", own, switch_reduction=True)
    assert t.switch_reduction_ratio == 0.9
    assert t.provenance["switch_reduction_ratio"] == "catalog nvlink4.switch_reduction_ratio (test)"
    assert topology_for("b200", own, switch_reduction=True).switch_reduction_ratio == 0.76
    off = _copied_catalog(tmp_path / "off", ("links.nvlink4", "switch_reduction", None))
    with pytest.raises(ValueError, match="switch_reduction=True needs"):
        network_for("h100", off, switch_reduction=True)
    on = _copied_catalog(tmp_path / "on", ("links.infinity_fabric", "switch_reduction", "true"))
    assert float(network_for("mi300x", on, switch_reduction=True).switch_reduction) == 1.0


def test_missing_link_figures_raise_naming_link_and_field(tmp_path):
    cat = _copied_catalog(
        tmp_path / "eff",
        ("links.nvlink4", "efficiency_ratio", None),
        ("link_defaults", "scaleup_switched_efficiency_ratio", None),
    )
    with pytest.raises(
        CatalogError,
        match=r"link 'nvlink4' has no 'efficiency_ratio'.*"
        r"'scaleup_switched_efficiency_ratio'",
    ):
        topology_for("h100", cat)
    assert topology_for("h100", cat, scaleup_efficiency=1.0).scaleup_efficiency == 1.0
    cat = _copied_catalog(
        tmp_path / "lat",
        ("links.ib_ndr", "latency_s", None),
        ("link_defaults", "scaleout_latency_s", None),
    )
    with pytest.raises(CatalogError, match=r"link 'ib_ndr' has no 'latency_s'"):
        network_for("h100", cat)
    cat = _copied_catalog(tmp_path / "bw", ("links.dojo_tile_edge", "bytes_per_s_per_dir", None))
    with pytest.raises(CatalogError, match=r"link 'dojo_tile_edge' lacks bytes_per_s_per_dir"):
        network_for("dojo_tile", cat)
    cat = _copied_catalog(
        tmp_path / "big",
        (
            "links.ib_ndr",
            "efficiency_ratio",
            '{ value = 1.5, source = "t", confidence = "vendor" }',
        ),
    )
    with pytest.raises(CatalogError, match=r"link 'ib_ndr': efficiency 1.5"):
        network_for("h100", cat)
    cat = _copied_catalog(tmp_path / "nvls", ("link_defaults", "switch_reduction_ratio", None))
    with pytest.raises(CatalogError, match=r"link 'nvlink4' has no 'switch_reduction_ratio'"):
        network_for("h100", cat, switch_reduction=True)
    with pytest.raises(CatalogError, match="must be true or false"):
        _copied_catalog(tmp_path / "flag", ("links.nvlink4", "switch_reduction", '"yes"'))
    with pytest.raises(CatalogError, match=r"\[link_defaults\] field 'mesh_latency_s': unknown"):
        _copied_catalog(
            tmp_path / "key",
            (
                "link_defaults",
                "mesh_latency_s",
                '{ value = 1e-6, source = "t", confidence = "vendor" }',
            ),
        )


def test_hand_built_network_default_ratio():
    from perfmodel.interconnect import default_switch_reduction_ratio

    seven = Network(*[jnp.asarray(x) for x in (360e9, 1e-6, 45e9, 2e-6, 8.0, 1.0, 0.0)])
    assert float(seven.switch_reduction_ratio) == default_switch_reduction_ratio()
    net = Network.create(
        360e9, 1e-6, 45e9, 2e-6, domain_size=8, switch_reduction=True, switch_reduction_ratio=0.5
    )
    assert T("all_reduce", 1e9, 8, net, alg="nvls") == pytest.approx(1e9 / 180e9 + 2e-6)
    with pytest.raises(ValueError, match="switch_reduction_ratio = 0.0"):
        Network.create(360e9, switch_reduction_ratio=0.0)
