"""The charts behind ``--plot`` (perfmodel.plots): tick labels with thousands separators,
each chart written to the file named and nowhere else, and the commands that draw them
(``train``, ``equiv``, ``net``) reporting the file they wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel import cli, plots

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


@settings(max_examples=40, deadline=None)
@given(st.integers(1000, 10**15))
def test_tick_labels_group_thousands(n):
    text = plots.tick_label(float(n))
    assert text.replace(",", "") == str(n)
    groups = text.split(",")
    assert 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


def test_small_ticks_keep_their_digits():
    assert [plots.tick_label(v) for v in (0.0, 1.0, 2.5, 999.0, 0.01, 1e-5)] == [
        "0",
        "1",
        "2.5",
        "999",
        "0.01",
        "1e-05",
    ]


def test_each_chart_is_written_only_where_named(tmp_path):
    train = {
        "workload": "w",
        "chip": "h100_sxm",
        "n_chips": 4096,
        "precision": "bf16",
        "mfu": 0.4,
        "step_time_s": 2.0,
        "layout": {"tp": 8, "sp": True},
        "breakdown": {"compute_s": 1.5, "dp_comm_s": 0.5, "bubble_s": 0.0},
        "memory": {"weights_bytes": 2e10, "activations_bytes": 3e10},
        "memory_capacity_bytes": 8e10,
    }
    counts = np.geomspace(1, 1e5, 9)
    paths = [
        plots.train_chart(tmp_path / "t.png", train, "model estimate"),
        plots.equiv_chart(
            tmp_path / "e.png",
            counts,
            {"low": counts * 0.9, "best": counts, "high": counts * 1.1},
            chip="b200",
            what="spec",
            point=(8.0, 8.0),
            spec_ratio=2.27,
        ),
        plots.collectives_chart(
            tmp_path / "c.png", counts * 1e3, {"all_reduce, 8 members": counts * 1e-9}, title="x"
        ),
    ]
    assert [p.name for p in paths] == ["t.png", "e.png", "c.png"]
    assert all(_png(p) for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "e.png", "t.png"]


def test_output_dir_is_the_users_choice(tmp_path, monkeypatch):
    monkeypatch.setenv(plots.OUT_DIR_ENV, str(tmp_path / "mine"))
    assert (
        plots.output_dir("nb") == tmp_path / "mine" / "nb" and (tmp_path / "mine" / "nb").is_dir()
    )
    monkeypatch.delenv(plots.OUT_DIR_ENV)
    default = plots.output_dir()
    assert default.name == "perfmodel-out" and default.is_dir()


@pytest.fixture
def run(capfd):
    def go(argv):
        rc = cli.main(list(argv))
        out, err = capfd.readouterr()
        return rc, out, err

    return go


def test_equiv_plot_spec_kind(run, tmp_path):
    rc, out, err = run(["equiv", "--chip", "b200", "--count", "8", "--plot", str(tmp_path)])
    written = tmp_path / "equiv_spec_b200_bf16.png"
    assert rc == 0, err
    assert f"plot: {written}" in out and _png(written)
    rc, out, _ = run(
        ["equiv", "--chip", "b200", "--count", "8", "--json", "--plot", str(tmp_path / "s")]
    )
    assert (
        rc == 0 and json.loads(out)["plot"] == str(tmp_path / "s.png") and _png(tmp_path / "s.png")
    )


@pytest.mark.parametrize(
    "argv, field",
    [
        (["equiv", "--kind", "price", "--budget-usd", "1e9"], "--plot"),
        (["train", "--chip", "h100", "--chips", "8", "--inference", "forward"], "--plot"),
        (["net", "h100"], "--plot"),
    ],
)
def test_bad_plot_requests_are_one_line_errors(run, tmp_path, argv, field):
    target = str(tmp_path) if argv[0] != "net" else str(tmp_path / "no" / "x.png")
    rc, out, err = run([*argv, "--plot", target])
    lines = [s for s in err.splitlines() if s.strip()]
    assert rc == 2 and len(lines) == 1 and field in lines[0] and out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_net_and_train_plots(run, tmp_path):
    rc, out, err = run(["net", "h100", "--group", "8,64", "--plot", str(tmp_path)])
    assert rc == 0, err
    assert f"plot: {tmp_path / 'net_h100.png'}" in out and _png(tmp_path / "net_h100.png")
    small = ["--layers", "2", "--hidden", "256", "--heads", "4", "--seq", "256"]
    rc, out, err = run(
        [
            "train",
            *small,
            "--vocab",
            "1024",
            "--chip",
            "h100",
            "--chips",
            "8",
            "--plot",
            str(tmp_path),
        ]
    )
    assert rc == 0, err
    (written,) = [p for p in tmp_path.iterdir() if p.name.startswith("train_")]
    assert f"plot: {written}" in out and _png(written)


# --------------------------------------------------------------------- plan charts


def _plan(objective="max-h100e", seed=3, **kw):
    from perfmodel.fleet.problem import build_problem
    from perfmodel.fleet.rounding import solve
    from perfmodel.fleet.testing import generate_scenario

    sc = generate_scenario(seed, n_offers=4, n_sites=2, n_periods=4)
    pr = build_problem(sc, value_source="standin", objective=objective, **kw)
    return sc, solve(pr, method="highs", exact=False)


def _data(line) -> tuple[list[float], list[float]]:
    return np.asarray(line.get_xdata()).tolist(), np.asarray(line.get_ydata()).tolist()


def _ticks_have_separators(axis) -> bool:
    """The axis writes 1,234,567 of its unit (a count; or USD on a billion-USD axis)."""
    fmt = axis.get_major_formatter()
    return "1,234,567" in (fmt(1_234_567.0, 0), fmt(1_234_567e9, 0))


def test_plan_chart_has_the_target_spend_vs_budget_and_units():
    from perfmodel.fleet.check import h100e_by_offer
    from perfmodel.fleet.report import plan_dict

    _, best = _plan()
    reach = float(h100e_by_offer(best.problem, best.buy_units).sum(axis=(0, 1))[-1])
    _, plan = _plan("min-cost", target_h100e=0.5 * reach)
    pr, d = plan.problem, plan_dict(plan)
    fig = plots.plan_figure(d, dict(zip(pr.offers, pr.chip_keys)))
    a1, a2, a3 = fig.axes
    for ax in fig.axes:  # every axis says what it counts, y axes in a unit
        assert ax.get_xlabel() and "(" in ax.get_ylabel() and ")" in ax.get_ylabel()
        assert _ticks_have_separators(ax.yaxis)
    assert "billion USD" in a2.get_ylabel() and "MW" in a3.get_ylabel()
    assert a2.yaxis.get_major_formatter()(2.5e12, 0) == "2,500"  # $2,500B
    (target,) = [ln for ln in a1.lines if str(ln.get_label()).startswith("target")]
    assert _data(target)[1] == pytest.approx([d["target_h100e"]] * 2)
    # spend vs budget: one budget and one capex bar per year, the numbers of the plan
    budget, spent = a2.containers
    assert [b.get_height() for b in budget] == [sp["budget_usd"] for sp in d["spend"]]
    assert [b.get_height() for b in spent] == pytest.approx([sp["capex_usd"] for sp in d["spend"]])


def test_a_chip_has_one_colour_in_every_chart(monkeypatch):
    from matplotlib.colors import to_hex

    from perfmodel.fleet.problem import build_problem, load_scenario
    from perfmodel.fleet.report import plan_dict
    from perfmodel.fleet.rounding import solve

    colours = []
    for name in ("tesla-2024", "tesla-2025"):  # different offers, in different orders
        pr = build_problem(load_scenario(name), value_source="standin")
        d = plan_dict(solve(pr, method="highs", exact=False))
        fig = plots.plan_figure(d, dict(zip(pr.offers, pr.chip_keys)))
        bars = {
            str(c.get_label()): to_hex(getattr(c, "patches")[0].get_facecolor())
            for c in fig.axes[0].containers
        }
        colours.append({lbl.split("(")[-1].rstrip(")"): c for lbl, c in bars.items()})
    both = set(colours[0]) & set(colours[1])
    assert {"h100_sxm", "h200", "gb200"} <= both
    assert all(colours[0][k] == colours[1][k] == plots.chip_color(k) for k in both)
    assert len(set(colours[0].values())) == len(colours[0])  # distinct chips, distinct colours
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, note="": drawn.append(fig) or path)
    counts = np.geomspace(1, 100, 5)  # the H100e curve of a chip has the chip's colour too
    plots.equiv_chart("unused.png", counts, {"best": counts}, chip="h200", what="spec")
    (curve,) = [ln for ln in drawn[0].axes[0].lines if ln.get_label() == "spec (best)"]
    assert to_hex(curve.get_color()) == colours[0]["h200"]
    assert plots.chip_color("my_chip") == plots.chip_color("my_chip")


def test_pareto_chart_draws_the_front_the_dominated_and_this_plan():
    from perfmodel.fleet.pareto import pareto_front

    sc, plan = _plan()
    pts = pareto_front(sc, budget_scales=(0.2, 0.5, 1.0, 3.0), value_source="standin")
    ds = [p.__dict__ for p in pts]
    ds.append(dict(ds[0], h100e_quarters=0.5 * ds[0]["h100e_quarters"], dominated=True))
    fig = plots.pareto_figure(ds, chosen=(plan.capex_usd, plan.h100e_quarters))
    (ax,) = fig.axes
    line = {ln.get_gid(): ln for ln in ax.lines}
    front = sorted((p.capex_usd, p.h100e_quarters) for p in pts if p.feasible and not p.dominated)
    assert front and list(zip(*_data(line["front"]))) == front
    assert _data(line["dominated"])[1] == [ds[-1]["h100e_quarters"]]
    assert _data(line["chosen"])[0] == [plan.capex_usd]
    assert "billion USD" in ax.get_xlabel() and "H100e-quarters" in ax.get_ylabel()
    assert _ticks_have_separators(ax.xaxis) and _ticks_have_separators(ax.yaxis)


@pytest.mark.parametrize(
    "target, allowed",
    [("no/such/dir/x.png", "existing directory"), ("x.jpg", ".png or .svg")],
)
def test_plan_plot_to_a_bad_path_is_one_line_before_any_solve(run, tmp_path, target, allowed):
    rc, out, err = run(["plan", "--values", "standin", "--plot", str(tmp_path / target)])
    lines = [s for s in err.splitlines() if s.strip()]
    assert rc == 2 and out == "" and len(lines) == 1
    assert "--plot" in lines[0] and allowed in lines[0] and target.split("/")[0] in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_plan_pareto_plot_writes_both_charts_where_named(run, tmp_path):
    rc, out, err = run(
        ["plan", "--values", "standin", "--pareto", "--json", "--plot", str(tmp_path / "p.svg")]
    )
    assert rc == 0, err
    d = json.loads(out)
    assert d["plot"] == {"ramp": str(tmp_path / "p.svg"), "pareto": str(tmp_path / "p_pareto.svg")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.svg", "p_pareto.svg"]
    assert all(b"<svg" in (tmp_path / n).read_bytes()[:2000] for n in ("p.svg", "p_pareto.svg"))
