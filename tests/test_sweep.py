"""Sweep engine: sampling, determinism, summaries, bad specs, the chips model, the CLI."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import cli
from perfmodel.hardware import PRECISION_INDEX, load_catalog
from perfmodel.sweep import engine, models


def toy_spec(samples=10, seed=0, chunk=4, params=None, work_iters=0):
    data = {
        "sweep": {"model": "toy", "samples": samples, "seed": seed, "chunk_size": chunk},
        "model": {"work_iters": work_iters},
    }
    if params:
        data["params"] = params
    return engine.parse_spec(data, "<test>")


def table_dict(path):
    t = engine.load_results(path)
    return {c: t.column(c).to_numpy() for c in t.column_names}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------- distributions


@given(
    lo=st.floats(-1e6, 1e6),
    width=st.floats(1e-3, 1e6),
    frac=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_triangular_and_uniform_stay_in_range(lo, width, frac, seed):
    hi = lo + width
    ps = [
        engine.parse_param(
            "t", {"dist": "triangular", "low": lo, "best": lo + frac * width, "high": hi}
        ),
        engine.parse_param("u", {"dist": "uniform", "low": lo, "high": hi}),
    ]
    v = engine.sample_params(ps, seed, np.arange(64))
    for k in ("t", "u"):
        x = np.asarray(v[k])
        assert np.all(x >= lo) and np.all(x <= hi), k


def test_distribution_moments_match_their_formulas():
    n = 20000
    ps = [
        engine.parse_param("tri", {"dist": "triangular", "low": 1.0, "best": 2.0, "high": 6.0}),
        engine.parse_param("logn", {"dist": "lognormal", "median": 3.0, "sigma": 0.5}),
        engine.parse_param("norm", {"dist": "normal", "mean": 5.0, "sd": 2.0, "low": 4.0}),
        engine.parse_param("ch", {"dist": "choice", "values": [10, 20, 30], "weights": [1, 2, 1]}),
    ]
    v = {k: np.asarray(x) for k, x in engine.sample_params(ps, 7, np.arange(n)).items()}
    se = 4.0 / math.sqrt(n)  # generous: 4 standard errors of a unit-variance mean
    # triangular mean (a+b+c)/3, variance (a^2+b^2+c^2-ab-ac-bc)/18
    assert abs(v["tri"].mean() - 3.0) < se * math.sqrt(19 / 18) * 2
    assert abs(v["tri"].var() - (1 + 4 + 36 - 2 - 6 - 12) / 18) < 0.05
    assert abs(np.median(v["logn"]) - 3.0) < 0.05
    assert abs(np.log(v["logn"]).std() - 0.5) < 0.01
    assert v["norm"].min() == 4.0  # clipped at low
    shares = [np.mean(v["ch"] == c) for c in (10, 20, 30)]
    np.testing.assert_allclose(shares, [0.25, 0.5, 0.25], atol=0.015)


def test_grid_is_a_full_factorial_in_spec_order():
    ps = [
        engine.parse_param("a", {"dist": "grid", "values": [1, 2, 3]}),
        engine.parse_param("b", {"dist": "grid", "values": [10, 20]}),
    ]
    assert engine.grid_size(ps) == 6
    v = engine.sample_params(ps, 0, np.arange(7))
    assert list(np.asarray(v["a"])) == [1, 2, 3, 1, 2, 3, 1]
    assert list(np.asarray(v["b"])) == [10, 10, 10, 20, 20, 20, 10]


def test_sample_depends_only_on_seed_and_index():
    ps = [
        engine.parse_param("x", {"dist": "uniform", "low": 0, "high": 1}),
        engine.parse_param("y", {"dist": "lognormal", "median": 1, "sigma": 1}),
    ]
    full = engine.sample_params(ps, 3, np.arange(100))
    some = engine.sample_params(ps, 3, np.array([97, 5, 42]))
    for k in full:
        np.testing.assert_array_equal(np.asarray(some[k]), np.asarray(full[k])[[97, 5, 42]])
    # adding a parameter leaves the others' draws unchanged
    more = engine.sample_params(
        ps + [engine.parse_param("z", {"dist": "uniform", "low": 0, "high": 1})], 3, np.arange(100)
    )
    np.testing.assert_array_equal(np.asarray(more["x"]), np.asarray(full["x"]))
    other = engine.sample_params(ps, 4, np.arange(100))
    assert not np.allclose(np.asarray(other["x"]), np.asarray(full["x"]))


# ---------------------------------------------------------------- engine


def test_same_seed_same_results_across_chunk_sizes(tmp_path):
    a = engine.run_sweep(toy_spec(samples=37, chunk=5), tmp_path / "a")
    assert a.complete and a.chunks_computed == 8 and a.rows_computed == 37
    engine.run_sweep(toy_spec(samples=37, chunk=5), tmp_path / "a2")
    engine.run_sweep(toy_spec(samples=37, chunk=16), tmp_path / "b")
    ra, rb = table_dict(tmp_path / "a"), table_dict(tmp_path / "b")
    assert list(ra["sample"]) == list(range(37))
    assert_same(ra, table_dict(tmp_path / "a2"))
    assert_same(ra, rb)
    engine.run_sweep(toy_spec(samples=37, chunk=5, seed=1), tmp_path / "c")
    assert not np.array_equal(table_dict(tmp_path / "c")["h100e"], ra["h100e"])


def test_resume_skips_existing_chunks_and_matches(tmp_path):
    spec = toy_spec(samples=50, chunk=8)
    first = engine.run_sweep(spec, tmp_path / "r", max_chunks=3)
    assert not first.complete and first.chunks_computed == 3
    (tmp_path / "r" / ".chunk-000004.parquet.tmp-p0-999").write_bytes(b"half-written")
    second = engine.run_sweep(spec, tmp_path / "r")
    assert second.complete and second.chunks_skipped == 3 and second.chunks_computed == 4
    assert not list((tmp_path / "r").glob(".chunk-*"))
    engine.run_sweep(spec, tmp_path / "ref")
    assert_same(table_dict(tmp_path / "r"), table_dict(tmp_path / "ref"))
    third = engine.run_sweep(spec, tmp_path / "r")
    assert third.chunks_computed == 0 and third.chunks_skipped == 7


def test_mismatched_directory_is_an_error_unless_overwrite(tmp_path):
    engine.run_sweep(toy_spec(samples=8, chunk=4), tmp_path / "d")
    with pytest.raises(
        ValueError, match=r"different sweep \(seed: directory has 0, this run has 5"
    ):
        engine.run_sweep(toy_spec(samples=8, chunk=4, seed=5), tmp_path / "d")
    with pytest.raises(ValueError, match="samples: directory has 8, this run has 9"):
        engine.run_sweep(toy_spec(samples=9, chunk=4), tmp_path / "d")
    r = engine.run_sweep(toy_spec(samples=8, chunk=4, seed=5), tmp_path / "d", overwrite=True)
    assert r.complete and r.chunks_computed == 2
    assert engine.read_manifest(tmp_path / "d")["identity"]["seed"] == 5


def test_summary_quantiles_and_decision_shares_by_hand(tmp_path):
    xs = [0.05 + 0.1 * i for i in range(10)]
    spec = toy_spec(samples=10, chunk=3, params={"x": {"dist": "grid", "values": xs}, "y": 0.7})
    engine.run_sweep(spec, tmp_path / "s")
    s = engine.summarize(tmp_path / "s")
    h = s["metrics"]["h100e"]
    # numpy's linear quantile on 0.05..0.95: positions 0.9, 4.5, 8.1
    assert h["p10"] == pytest.approx(0.14) and h["p50"] == pytest.approx(0.5)
    assert h["p90"] == pytest.approx(0.86) and h["mean"] == pytest.approx(0.5)
    assert s["metrics"]["cost_usd"] == {
        "p10": 0.7,
        "p50": 0.7,
        "p90": 0.7,
        "mean": pytest.approx(0.7),
    }
    assert s["decisions"]["buy.a.s1"]["share"] == 0.5  # x > 0.5 in 5 of 10
    assert s["decisions"]["buy.b.s1"]["share"] == 1.0
    pf = {tuple(p["chosen"]): p["share"] for p in s["portfolios"]}
    assert pf == {("buy.a.s1", "buy.b.s1"): 0.5, ("buy.b.s1",): 0.5}
    assert s["inputs"]["y"]["p50"] == 0.7


def test_partial_results_are_refused_unless_allowed(tmp_path):
    engine.run_sweep(toy_spec(samples=20, chunk=4), tmp_path / "p", max_chunks=2)
    with pytest.raises(ValueError, match="3 of 5 chunks missing"):
        engine.summarize(tmp_path / "p")
    assert engine.summarize(tmp_path / "p", allow_partial=True)["rows"] == 8


# ---------------------------------------------------------------- bad specs


@pytest.mark.parametrize(
    "data, match",
    [
        (
            {"sweep": {"model": "toy"}, "params": {"x": {"dist": "beta", "a": 1}}},
            r"params.x.dist = 'beta' must be one of uniform",
        ),
        (
            {"sweep": {"model": "toy"}, "params": {"x": {"dist": "uniform", "low": 2, "high": 1}}},
            r"params.x: need low <= high, got low=2, high=1",
        ),
        (
            {
                "sweep": {"model": "toy"},
                "params": {"x": {"dist": "triangular", "low": 0, "high": 1}},
            },
            r"params.x: dist 'triangular' needs 'best'",
        ),
        (
            {
                "sweep": {"model": "toy"},
                "params": {"x": {"dist": "lognormal", "median": -1, "sigma": 1}},
            },
            r"params.x.median = -1 must be > 0",
        ),
        (
            {"sweep": {"model": "toy"}, "params": {"x": {"dist": "choice", "values": []}}},
            r"params.x.values = \[\] must be a non-empty list",
        ),
        (
            {
                "sweep": {"model": "toy"},
                "params": {"x": {"dist": "uniform", "low": 0, "high": "1"}},
            },
            r"params.x.high must be a finite number, got '1'",
        ),
        (
            {"sweep": {"model": "toy"}, "params": {"zz": 1.0}},
            r"params.zz: unknown input for model 'toy'; known: x, y",
        ),
        (
            {"sweep": {"model": "toy", "samples": 0}},
            r"sweep.samples = 0 must be an integer in \[1,",
        ),
        ({"sweep": {"model": "nope"}}, r"sweep.model = 'nope' must be one of"),
        ({"sweep": {"model": "toy", "speed": 1}}, r"sweep: unknown key\(s\) \['speed'\]"),
        ({"sweep": {"model": "toy"}, "extra": {}}, r"unknown top-level table\(s\) \['extra'\]"),
        (
            {"sweep": {"model": "chips"}, "model": {"chips": ["h100", "tpu9"]}},
            r"model.chips: unknown chip 'tpu9'",
        ),
        (
            {"sweep": {"model": "chips"}, "model": {"n_chips": 0}},
            r"model.n_chips = 0 must be an integer",
        ),
        (
            {
                "sweep": {"model": "chips"},
                "model": {"chips": ["ai4"], "precision": {"ai4": "fp64"}},
            },
            r"model.precision for 'ai4' = 'fp64' must be one of",
        ),
        (
            {
                "sweep": {"model": "chips"},
                "model": {"chips": ["b200"]},
                "params": {"b200.warp_drive_w": 1},
            },
            r"params.b200.warp_drive_w: unknown input for model 'chips'; known: b200\.",
        ),
    ],
)
def test_bad_specs_name_the_field(data, match):
    with pytest.raises(ValueError, match=match):
        engine.parse_spec(data, "<test>")


def test_bad_spec_file_through_the_cli(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text('[sweep]\nmodel = "toy"\n[params]\nx = { dist = "uniform", low = 3, high = 1 }\n')
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("perfmodel sweep: error:") and "params.x: need low <= high" in err
    assert len(err.splitlines()) == 1
    assert cli.main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2


# ---------------------------------------------------------------- chips model


CHIPS_SPEC = {
    "sweep": {"model": "chips", "samples": 24, "chunk_size": 16},
    "model": {
        "chips": ["h100", "b200", "dojo_tile"],
        "workload": "llama3-8b",
        "n_chips": 64,
        "engine": "roofline",
    },
}


@pytest.fixture(scope="module")
def chips_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("chips") / "run"
    engine.run_sweep(engine.parse_spec(CHIPS_SPEC, "<test>"), out)
    return out, table_dict(out)


def test_chip_from_values_matches_catalog_to_chip():
    cat = load_catalog()
    for key in ("h100_sxm", "b200", "dojo_tile", "ai4"):
        rec = cat.chips[key]
        for pick in ("low", "high"):
            vals = {f: fig.pick(pick) for f, fig in rec.figures.items()}
            a, b = models.chip_from_values(rec, vals), rec.to_chip(pick)
            for la, lb in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
                np.testing.assert_allclose(np.asarray(la), np.asarray(lb), rtol=1e-15, err_msg=key)


def test_chips_model_reference_and_spec_ratios(chips_results):
    _, r = chips_results
    cat = load_catalog()
    # the reference chip is exactly n H100-equivalents, whatever its sampled specs
    np.testing.assert_allclose(r["h100e.h100_sxm"], 64.0, rtol=1e-12)
    bf16 = PRECISION_INDEX["bf16"]
    ratio = (
        r["param.b200.bf16_flops_per_s"]
        if "param.b200.bf16_flops_per_s" in r
        else cat.chip("b200").peak_flops_per_s[bf16]
    )
    np.testing.assert_allclose(
        r["spec_h100e.b200"], np.asarray(ratio) / float(cat.chip("h100").peak_flops_per_s[bf16])
    )
    # H100e per $1M = h100e / (n * all-in price) * 1e6, with the sampled price
    np.testing.assert_allclose(
        r["h100e_per_musd.b200"],
        r["h100e.b200"] / (64 * r["param.b200.allin_price_usd"]) * 1e6,
        rtol=1e-12,
    )
    # exactly one chip is "best per dollar" in every sample
    best = sum(r[f"best_per_usd.{k}"] for k in ("h100_sxm", "b200", "dojo_tile"))
    assert np.all(best == 1.0)
    assert np.all(r["mfu.b200"] > 0) and np.all(r["mfu.b200"] < 1)


@given(scale=st.floats(1.05, 4.0))
def test_faster_matmuls_never_slow_a_step(scale):
    cat = load_catalog()
    w = models.TRANSFORMERS["llama3-8b"]
    chip = cat.chip("b200")
    eff = jax.tree_util.tree_map(jnp.asarray, engine_eff())
    fast = chip.replace_fields(peak_flops_per_s=chip.peak_flops_per_s * scale)
    t0 = _step(w, chip, eff)
    t1 = _step(w, fast, eff)
    assert t1 <= t0 * (1 + 1e-12)
    assert t1 >= t0 / scale * (1 - 1e-12)  # no better than the speed-up itself


def engine_eff():
    from perfmodel.roofline import Efficiency

    return Efficiency.default()


_step_jit = jax.jit(
    lambda chip, eff: models.train_step(
        models.TRANSFORMERS["llama3-8b"], chip, 64, "bf16", eff, 0.8, 8
    )["step_s"]
)


def _step(w, chip, eff):
    return float(_step_jit(chip, eff))


def test_train_step_hand_value_for_a_single_compute_bound_chip():
    """n = 1: no communication; with ideal efficiency the step is 3 x the sum of the
    forward op rooflines plus the optimizer update."""
    from perfmodel.roofline import Efficiency

    w = models.TRANSFORMERS["llama3-8b"]
    chip = load_catalog().chip("h100")
    r = models.train_step(w, chip, 1, "bf16", Efficiency.ideal(), 1.0, 8)
    assert float(r["comm_s"]) == 0.0
    stacked, counts, fwd_flops, _ = models._step_ops(w, 1, "bf16")
    # 6 N D rule of thumb: matmul flops per token ~ 2 x params (plus attention)
    assert 3 * fwd_flops / w.global_batch_tokens == pytest.approx(6 * w.params, rel=0.15)
    lower = 3 * fwd_flops / 989.4e12
    assert lower <= float(r["step_s"]) <= lower * 1.2


# ---------------------------------------------------------------- CLI


def test_cli_json_and_plot(tmp_path, capsys):
    f = tmp_path / "toy.toml"
    f.write_text('[sweep]\nmodel = "toy"\nsamples = 30\nchunk_size = 8\n')
    png = tmp_path / "p.png"
    assert (
        cli.main(
            [
                "sweep",
                str(f),
                "--out",
                str(tmp_path / "o"),
                "--json",
                "--plot",
                str(png),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    s = json.loads(capsys.readouterr().out)
    assert s["rows"] == 30 and s["seed"] == 3 and s["run"]["complete"]
    assert (
        0
        <= s["metrics"]["h100e"]["p10"]
        <= s["metrics"]["h100e"]["p50"]
        <= s["metrics"]["h100e"]["p90"]
        <= 1
    )
    assert png.stat().st_size > 1000
    # rerun: nothing to compute, same summary
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o"), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "resumed 4" in out and "h100e" in out


@pytest.mark.slow
def test_training_engine_at_catalog_best_matches_best_layout(tmp_path):
    """With every input at its catalog best value, the sweep's H100e is the ratio of
    perfmodel.training.best_layout throughputs (the layout search at best figures)."""
    from perfmodel import training as tr

    spec = engine.parse_spec(
        {
            "sweep": {"model": "chips", "samples": 3, "chunk_size": 3},
            "model": {"chips": ["b200"], "workload": "llama3-8b", "n_chips": 64},
        },
        "<test>",
    )
    assert spec.model.config["engine"] == "training"
    engine.run_sweep(spec.replace(params=()), tmp_path / "t")
    r = table_dict(tmp_path / "t")
    b = tr.best_layout("llama3-8b", "b200", 64).tokens_per_s
    h = tr.best_layout("llama3-8b", "h100", 64).tokens_per_s
    np.testing.assert_allclose(r["h100e.b200"], 64 * b / h, rtol=1e-9)
    np.testing.assert_allclose(r["units_per_s.b200"], b, rtol=1e-9)


def test_processes_split_chunks_and_together_equal_one_run(tmp_path, capsys):
    """The multi-host path: process p of P takes chunks c with c % P == p."""
    spec = toy_spec(samples=23, chunk=4)
    a = engine.run_sweep(spec, tmp_path / "m", process_index=1, process_count=2, progress=True)
    assert a.chunks_computed == 3 and not a.complete  # chunks 1, 3, 5
    assert "rows" in capsys.readouterr().err  # the tqdm bar (rows/s) when asked for
    b = engine.run_sweep(spec, tmp_path / "m", process_index=0, process_count=2)
    assert b.chunks_computed == 3 and b.complete  # chunks 0, 2, 4
    engine.run_sweep(spec, tmp_path / "ref")
    assert_same(table_dict(tmp_path / "m"), table_dict(tmp_path / "ref"))
    with pytest.raises(ValueError, match=r"process_index = 2 must be in \[0, 2\)"):
        engine.run_sweep(spec, tmp_path / "m", process_index=2, process_count=2)
