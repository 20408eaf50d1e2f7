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
