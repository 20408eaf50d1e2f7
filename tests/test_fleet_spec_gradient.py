"""d(LP-optimal H100e-quarters) / d(chip spec) through the value curves
(perfmodel.fleet.sensitivity.spec): the chain's pieces against finite differences
(hypothesis), input errors, and the bar on tesla-2024 against full re-plans (slow)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel.cli import main
from perfmodel.errors import InputError
from perfmodel.fleet.curves import concave_interpolant
from perfmodel.fleet.problem import load_scenario
from perfmodel.fleet.sensitivity import spec as sg


@pytest.fixture(scope="module")
def tesla():
    return load_scenario("tesla-2024")


# ------------------------------------------------------------------ parsing and errors


def test_parse_spec_names_offers_chips_and_aliases(tesla):
    t = sg.parse_spec("gb200.hbm_bandwidth", tesla)
    assert (t.chip, t.field, t.leaf, t.index, t.unit) == (
        "gb200",
        "dram_bytes_per_s",
        "mem_bytes_per_s",
        1,
        "TB/s",
    )
    assert [tesla.offers[k].key for k in t.offers] == ["gb200"]
    d = sg.parse_spec("offers.dojo.sram_bandwidth", tesla)  # offer key -> its chip
    assert (d.chip, d.field, d.index) == ("dojo_tile", "sram_bytes_per_s", 0)
    assert sg.parse_spec("dojo_tile.sram_bytes_per_s", tesla).offers == d.offers
    f = sg.parse_spec("h100.peak_flops", tesla)  # the workloads' precision
    assert (f.chip, f.field, f.unit) == ("h100_sxm", "bf16_flops_per_s", "TFLOP/s")


@pytest.mark.parametrize(
    "text, words",
    [
        ("tpu.hbm_bandwidth", ["'tpu'", "gb200", "dojo_tile"]),
        ("gb200.dram_bytes", ["'dram_bytes'", "capacity", "dram_bytes_per_s"]),
        ("gb200.scaleup_bytes_per_s_per_dir", ["links", "sram_bytes_per_s"]),
        ("gb200", ["CHIP.FIELD", "gb200"]),
        ("ai4.hbm_bandwidth", ["'ai4'", "counted offer"]),  # counts = false
    ],
)
def test_parse_spec_errors_name_the_value_and_the_allowed(tesla, text, words):
    with pytest.raises(InputError) as e:
        sg.parse_spec(text, tesla)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_cli_bad_spec_is_one_line_and_exit_2(capsys):
    assert main(["plan", "--spec-gradient", "gb200.dram_bytes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dram_bytes" in err[0] and "dram_bytes_per_s" in err[0]
    assert main(["plan", "--check-gradient"]) == 2
    assert "--spec-gradient" in capsys.readouterr().err


# ------------------------------------------------------------------ the chain, by pieces


@given(
    logs=st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6),
    tan=st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6),
    frac=st.floats(0.05, 1.0),
    mode=st.sampled_from(["capacity", "job"]),
)
@settings(max_examples=15)
def test_curve_and_hull_tangent_match_finite_differences(logs, tan, frac, mode):
    """raw rates at the grid -> make_curve -> read at breakpoints -> concave hull: the
    forward-mode tangent with maxima and hull vertices held fixed equals the central
    difference wherever the two one-sided differences agree (no kink within the step)."""
    from perfmodel.equivalence import DEFAULT_GRID

    n = np.asarray(DEFAULT_GRID[:6], np.float64)
    raw = n * np.exp(np.asarray(logs))  # per-chip rates around 1
    draw = raw * np.asarray(tan)
    xs = np.array([0.0, 1 / 16, 1 / 4, 1 / 2, 1.0]) * frac * n[-1]

    def hull_values(r):
        v, _ = sg._curve_values_and_tangent(r, np.zeros_like(r), xs, mode)
        return concave_interpolant(xs, np.maximum(v, 0.0))

    v, dv = sg._curve_values_and_tangent(raw, draw, xs, mode)
    hull, _ = sg._hull_vertices(xs, np.maximum(v, 0.0))
    d = np.interp(xs, xs[hull], dv[hull])
    h = 1e-6
    fp, f0, fm = hull_values(raw + h * draw), hull_values(raw), hull_values(raw - h * draw)
    dp, dm = (fp - f0) / h, (f0 - fm) / h
    scale = 1e-4 * (np.abs(dp) + np.abs(dm) + np.max(np.abs(f0)))
    assume(np.all(np.abs(dp - dm) <= scale))  # a kink within the step: one-sided only
    np.testing.assert_allclose(d, 0.5 * (dp + dm), rtol=1e-4, atol=float(np.max(scale)))


@pytest.fixture(scope="module")
def gb200_layouts(tesla):
    from perfmodel.hardware import load_catalog

    t = sg.parse_spec("gb200.hbm_bandwidth", tesla)
    w, chip, net, eff = sg._model_inputs("gb200", "video-driving", "best", load_catalog())
    raw = sg._raw_rates(w, chip, net, eff, 8, "capacity", "video-driving")
    lays = sg._best_layouts(w, chip, net, eff, raw, "video-driving", "capacity")
    return t, w, chip, net, eff, raw, lays


def test_best_layouts_reach_the_search_and_set_the_curve(gb200_layouts):
    t, w, chip, net, eff, raw, lays = gb200_layouts
    from perfmodel.equivalence import DEFAULT_GRID

    per = raw / np.asarray(DEFAULT_GRID[: len(raw)])
    idx = [i for i, _ in lays]
    assert int(np.argmax(per)) in idx  # the count that sets the per-chip maximum
    tans = sg._layout_tangents(w, chip, net, eff, t, lays)
    for i, rate, _, _ in tans:
        assert rate >= raw[i] * (1 - 1e-9)


@given(scale=st.floats(0.7, 1.4))
@settings(max_examples=4)
def test_step_time_tangent_at_a_fixed_layout_matches_finite_differences(gb200_layouts, scale):
    """jax.jvp of the training model's throughput in the HBM bandwidth at the best
    layouts, against a central difference of the same layouts at a scaled spec."""
    t, w, chip, net, eff, raw, lays = gb200_layouts
    v = sg._spec_value(chip, t) * scale
    ch = sg._with_spec(chip, t, v)
    one = [(i, r[:1]) for i, r in lays]
    tans = sg._layout_tangents(w, ch, net, eff, t, one)
    h = 1e-5 * v
    up = sg._layout_tangents(w, sg._with_spec(chip, t, v + h), net, eff, t, one)
    dn = sg._layout_tangents(w, sg._with_spec(chip, t, v - h), net, eff, t, one)
    for (_, _, tan, _), (_, rp, _, _), (_, rm, _, _) in zip(tans, up, dn):
        fd = (rp - rm) / (2 * h)
        assert float(tan[0]) == pytest.approx(fd, rel=1e-4, abs=1e-6 * abs(rp) / v)


# ------------------------------------------------------------------ the bar (tesla-2024)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["gb200.hbm_bandwidth", "dojo.sram_bandwidth", "gb200.tdp"])
def test_tesla_2024_spec_gradient_matches_full_replans_within_2pct(tesla, spec):
    [rec] = sg.spec_gradients(tesla, [spec], check=True)
    fd = rec["check"]
    assert rec["gradient"] > 0  # each of these helps the plan
    assert rec["relative_error"] <= 0.02, (rec["gradient"], fd)
    lo, hi = sorted((fd["d_plus"], fd["d_minus"]))
    slack = 0.02 * max(abs(lo), abs(hi))
    assert lo - slack <= rec["gradient"] <= hi + slack
    assert rec["objective_unit"] == "H100e-quarters"
    assert rec["elasticity"] == pytest.approx(
        rec["gradient"] * rec["value_natural"] / rec["objective"], rel=1e-9
    )


@pytest.mark.slow
def test_min_cost_spec_gradient_moves_the_target_row(tesla):
    """min-cost: the spec moves the target row's coefficients (A), not only c."""
    [rec] = sg.spec_gradients(
        tesla,
        ["gb200.hbm_bandwidth"],
        check=True,
        objective="min-cost",
        target_h100e=150_000,
        target_period="2025Q2",
    )
    assert rec["objective_unit"] == "USD of capex"
    assert rec["gradient"] < 0  # a faster GB200 saves capex
    assert rec["relative_error"] <= 0.02


@pytest.mark.slow
def test_user_chip_spec_gradient_matches_replans():
    """A chip of a user catalog (examples/user-chip): the gradient comes from its own
    figures and network, through the same chain."""
    from pathlib import Path

    from perfmodel.fleet.overrides import load_with_overrides
    from perfmodel.hardware import load_catalog

    ex = Path(__file__).resolve().parents[1] / "examples" / "user-chip"
    cat = load_catalog(ex / "my_chips.toml")
    sc, _ = load_with_overrides(str(ex / "scenario.toml"), [], catalog=cat)
    [rec] = sg.spec_gradients(sc, ["mine.hbm_bandwidth"], check=True)
    assert rec["chip"] == "my_chip" and rec["gradient"] > 0
    assert rec["relative_error"] <= 0.02


@given(a=st.floats(0.2, 5.0), b=st.floats(0.2, 5.0))
@settings(max_examples=10)
def test_face_range_brackets_a_degenerate_objective(a, b):
    """max x0 + x1 s.t. x0 + x1 <= 1: every point of the edge is optimal, so the optimum's
    derivative in the direction dc = (a, -b) is one-sided: -b to the left, a to the
    right; a unique optimum (objective x0 + 2 x1) gives one figure."""
    import jax.numpy as jnp
    import scipy.sparse as sp

    from perfmodel.fleet.highs import HighsLP
    from perfmodel.fleet.lp import LP

    def lp_of(c):
        return LP(
            c=jnp.asarray(c, jnp.float64),
            A_ub=sp.csr_array(np.ones((1, 2))),
            b_ub=jnp.asarray([1.0]),
            A_eq=sp.csr_array((0, 2)),
            b_eq=jnp.zeros(0),
            lo=jnp.zeros(2),
            hi=jnp.full(2, jnp.inf),
            var_names=("x0", "x1"),
            row_names=("r0",),
        )

    dc = np.array([a, -b])
    lp = lp_of([1.0, 1.0])
    lo, hi = sg._face_range(lp, HighsLP(lp).solve(), dc)
    assert lo == pytest.approx(-b, abs=1e-6) and hi == pytest.approx(a, abs=1e-6)
    lp2 = lp_of([1.0, 2.0])
    lo2, hi2 = sg._face_range(lp2, HighsLP(lp2).solve(), dc)
    assert lo2 == pytest.approx(-b, abs=1e-6) and hi2 == pytest.approx(-b, abs=1e-6)
