"""The fleet sweep model: per-sample scenario variants solved in one vmapped PDHG call,
checked against HiGHS on the same variants."""

import numpy as np
import pytest

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


def test_fleet_inputs_move_the_optimum_the_right_way(fleet_run):
    _, r = fleet_run
    # more budget in 2024 never hurts (rank correlation over the samples is positive)
    b, h = r["param.budget.2024"], r["h100e_quarters"]
    assert np.corrcoef(np.argsort(np.argsort(b)), np.argsort(np.argsort(h)))[0, 1] > 0
    per_q = np.stack([r[c] for c in r if c.startswith("h100e_q.")], axis=1)
    np.testing.assert_allclose(per_q.sum(axis=1), h, rtol=1e-9)
    np.testing.assert_allclose(per_q[:, -1], r["h100e"], rtol=1e-12)


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
    with pytest.raises(ValueError, match=r"params.price.o9_tpu: unknown input for model 'fleet'; known: price\.o0_h100_sxm"):
        engine.parse_spec(bad, "<test>")
