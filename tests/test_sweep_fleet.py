"""The fleet sweep model: per-sample scenario variants solved by the batched LP solvers
(PDHG; the batched dual simplex; HiGHS one by one from the base basis, the CPU default),
checked against HiGHS on the same variants."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401
from perfmodel.sweep import engine

pytest.importorskip("perfmodel.fleet.problem")

FLEET = {
    "sweep": {"model": "fleet", "samples": 6, "chunk_size": 6, "seed": 2},
    "model": {"scenario": "generated:0:3:1:4", "value_source": "standin"},
    "params": {
        "price.o0_h100_sxm": {"dist": "uniform", "low": 3e5, "high": 5e5},
        "delay.o1_h200": {"dist": "uniform", "low": 0, "high": 2},
        "power.s0": {"dist": "triangular", "low": 0.7, "best": 1.0, "high": 1.3},
        "power_delay.s0": {"dist": "uniform", "low": 0, "high": 1.5},
        "budget.2024": {"dist": "uniform", "low": 2e8, "high": 6e8},
    },
}


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    spec = engine.parse_spec(FLEET, "<test>")
    out = tmp_path_factory.mktemp("fleet") / "run"
    engine.run_sweep(spec, out)
    t = engine.load_results(out)
    return spec, {c: t.column(c).to_numpy() for c in t.column_names}


@pytest.mark.slow
def test_fleet_sweep_matches_highs_on_every_variant(fleet_run):
    from perfmodel.fleet import problem as fp

    spec, r = fleet_run
    assert np.all(r["solver.status"] == 0)
    variant = spec.model.extras["variant_problem"](spec.params)
    names = [p.name for p in spec.params]
    for i in range(len(r["sample"])):
        prob = variant({n: np.float64(r[f"param.{n}"][i]) for n in names})
        lp = fp.build_lp(prob)
        ref = fp.relaxed_solve(lp, "highs")
        assert ref.status == "optimal"
        nb = int(np.prod(prob.shape))
        cost = float(np.asarray(lp.c[:nb]) @ ref.x[:nb])  # the tiny cost tie-break term
        assert r["h100e_quarters"][i] == pytest.approx(ref.objective - cost, rel=2e-4)
        # the sweep's plan spends what its units cost at the sampled price
        assert r["cost_usd"][i] <= float(np.asarray(prob.budget_usd).sum()) * (1 + 1e-5)


@pytest.mark.slow
def test_fleet_inputs_move_the_optimum_the_right_way(fleet_run):
    _, r = fleet_run
    # more budget in 2024 never hurts (rank correlation over the samples is positive)
    b, h = r["param.budget.2024"], r["h100e_quarters"]
    assert np.corrcoef(np.argsort(np.argsort(b)), np.argsort(np.argsort(h)))[0, 1] > 0
    per_q = np.stack([r[c] for c in r if c.startswith("h100e_q.")], axis=1)
    np.testing.assert_allclose(per_q.sum(axis=1), h, rtol=1e-9)
    np.testing.assert_allclose(per_q[:, -1], r["h100e"], rtol=1e-12)


@pytest.mark.slow
def test_fleet_summary_reports_decision_shares(fleet_run, tmp_path):
    spec, _ = fleet_run
    engine.run_sweep(spec, tmp_path / "s")
    s = engine.summarize(tmp_path / "s")
    assert set(s["metrics"]) == {"h100e", "h100e_quarters", "cost_usd"}
    assert all(k.startswith("buy.") for k in s["decisions"])
    assert all(0.0 <= d["share"] <= 1.0 for d in s["decisions"].values())
    assert sum(p["share"] for p in s["portfolios"]) <= 1.0 + 1e-12


def test_unknown_fleet_input_names_known_ones():
    bad = {**FLEET, "params": {"price.o9_tpu": 1.0}}
    with pytest.raises(
        ValueError,
        match=r"params.price.o9_tpu: unknown input for model 'fleet'; known: price\.o0_h100_sxm",
    ):
        engine.parse_spec(bad, "<test>")


def test_shifts_by_hand():
    from perfmodel.sweep.fleet_model import _ramp_later, _shift_later

    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(_shift_later(x, 0.0), x)
    np.testing.assert_allclose(_shift_later(x, 1.0), [0, 1, 2, 3])
    np.testing.assert_allclose(_shift_later(x, 0.5), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(_shift_later(x, 9.0), [0, 0, 0, 0])
    np.testing.assert_allclose(_ramp_later(x, 1.0), [1, 1, 2, 3])  # power already there stays
    np.testing.assert_allclose(_ramp_later(x, 0.5), [1, 1.5, 2.5, 3.5])


@given(d=st.floats(0.0, 6.0), seed=st.integers(0, 1000))
def test_delayed_supply_arrives_later_never_earlier(d, seed):
    from perfmodel.sweep.fleet_model import _shift_later

    x = np.random.default_rng(seed).uniform(0, 10, 8)
    y = np.asarray(_shift_later(x, d))
    # cumulative deliveries by any quarter never exceed the undelayed ones
    assert np.all(np.cumsum(y) <= np.cumsum(x) + 1e-9)
    if float(d).is_integer():
        assert y.sum() == pytest.approx(x[: 8 - int(d)].sum())


def test_event_delay_reproduces_the_scenario_supply():
    """tesla-2024's event 0 (12k H100 diverted, 2 quarters late): drawing its delay at
    the scenario value gives the planner's own supply; 0 gives the undiverted supply."""
    from perfmodel.fleet import problem as fp

    if "tesla-2024" not in fp.scenario_names():
        pytest.skip("no tesla-2024 scenario in this build")
    spec = engine.parse_spec(
        {
            "sweep": {"model": "fleet"},
            "model": {"scenario": "tesla-2024", "value_source": "standin"},
        },
        "<t>",
    )
    sc = fp.load_scenario("tesla-2024")
    assert sc.events, "tesla-2024 has its diversion event"
    off, units, p, delay = sc.events[0]
    variant = spec.model.extras["variant_problem"](spec.params)
    base = fp.build_problem(sc, value_source="standin")
    same = variant({"event_delay.0": np.float64(delay)})
    np.testing.assert_allclose(
        np.asarray(same.supply_units), np.asarray(base.supply_units), atol=1e-9
    )
    none = variant({"event_delay.0": np.float64(0.0)})
    raw = np.array([o.supply_units for o in sc.offers])
    np.testing.assert_allclose(np.asarray(none.supply_units), raw, atol=1e-9)


# ---------------------------------------------------------------- batching = "simplex"


def _fleet_spec(batching: str, samples: int = 16, chunk: int = 8):
    data = {
        **FLEET,
        "sweep": {**FLEET["sweep"], "samples": samples, "chunk_size": chunk},
        "model": {**FLEET["model"], "batching": batching},
    }
    return engine.parse_spec(data, "<test>")


def _table(path):
    t = engine.load_results(path)
    return {c: t.column(c).to_numpy() for c in t.column_names}


@pytest.fixture(scope="module")
def map_and_simplex(tmp_path_factory):
    out = tmp_path_factory.mktemp("batching")
    res = {}
    for b in ("map", "simplex", "highs"):
        spec = _fleet_spec(b)
        assert spec.model.host == (b in ("simplex", "highs"))
        run = engine.run_sweep(spec, out / b, progress=False)
        assert run.complete and run.rows_computed == 16
        res[b] = _table(out / b)
    return res


@pytest.mark.slow
def test_simplex_batching_matches_the_pdhg_sweep(map_and_simplex):
    m, s = map_and_simplex["map"], map_and_simplex["simplex"]
    assert list(m) == list(s)  # same columns, same order
    for c in m:  # the same draws, bit for bit
        if c == "sample" or c.startswith("param."):
            np.testing.assert_array_equal(m[c], s[c], err_msg=c)
    assert np.all(s["solver.status"] == 0) and np.all(m["solver.status"] == 0)
    assert np.all(s["solver.iterations"] < 1000)  # pivots, not PDHG iterations
    np.testing.assert_allclose(s["h100e_quarters"], m["h100e_quarters"], rtol=1e-4)
    for c in m:
        if c.startswith(("h100e", "cost_usd", "buy.", "chips.")):
            scale = max(float(np.max(np.abs(m[c]))), 1.0)
            # PDHG stops at tol 1e-6 (relative); the simplex answer is a vertex
            np.testing.assert_allclose(s[c], m[c], atol=2e-3 * scale, rtol=0, err_msg=c)


@pytest.mark.slow
def test_highs_batching_gives_the_simplex_optimum(map_and_simplex):
    """HiGHS one by one from the base basis and the batched dual simplex: the same draws and
    the same optimal value (each a vertex; tied optima may split purchases differently)."""
    s, h = map_and_simplex["simplex"], map_and_simplex["highs"]
    assert list(s) == list(h)
    for c in s:
        if c == "sample" or c.startswith("param."):
            np.testing.assert_array_equal(s[c], h[c], err_msg=c)
    assert np.all(h["solver.status"] == 0)
    np.testing.assert_allclose(h["h100e_quarters"], s["h100e_quarters"], rtol=1e-9)


@pytest.mark.slow
def test_simplex_sweep_matches_highs_on_every_variant(map_and_simplex):
    from perfmodel.fleet import problem as fp

    spec, r = _fleet_spec("simplex"), map_and_simplex["simplex"]
    variant = spec.model.extras["variant_problem"](spec.params)
    names = [p.name for p in spec.params]
    for i in range(0, len(r["sample"]), 3):
        prob = variant({n: np.float64(r[f"param.{n}"][i]) for n in names})
        lp = fp.build_lp(prob)
        ref = fp.relaxed_solve(lp, "highs")
        nb = int(np.prod(prob.shape))
        cost = float(np.asarray(lp.c[:nb]) @ ref.x[:nb])
        assert r["h100e_quarters"][i] == pytest.approx(ref.objective - cost, rel=1e-7)


@pytest.mark.slow
def test_interrupted_simplex_sweep_resumes_to_the_same_rows(map_and_simplex, tmp_path):
    spec = _fleet_spec("simplex")
    first = engine.run_sweep(spec, tmp_path / "r", max_chunks=1, progress=False)
    assert not first.complete and first.chunks_computed == 1
    second = engine.run_sweep(spec, tmp_path / "r", progress=False)
    assert second.complete and second.chunks_skipped == 1 and second.chunks_computed == 1
    r = _table(tmp_path / "r")
    for c, v in map_and_simplex["simplex"].items():
        np.testing.assert_array_equal(r[c], v, err_msg=c)
    third = engine.run_sweep(spec, tmp_path / "r", progress=False)
    assert third.chunks_computed == 0 and third.chunks_skipped == 2
