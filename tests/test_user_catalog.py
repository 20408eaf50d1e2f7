"""The user's own chips end to end (issue 15 item 5): ``--catalog`` on ``plan``,
``train``, ``equiv``, ``sweep`` and ``compare``; scenario offers naming a user chip; the chip
resolved once (:class:`perfmodel.equivalence.ChipSpec`) and every cache keyed by the
content of its catalog records, so a user chip that shadows a built-in name with other
figures never gets the built-in's shipped or cached curve; a chip the training model
cannot value is one line naming the chip and the field, exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import cli, model_cache
from perfmodel.equivalence import ChipSpec, check_trainable, chip_spec
from perfmodel.errors import InputError
from perfmodel.fleet import curves as cv
from perfmodel.fleet import values as fv
from perfmodel.fleet.schema import load_scenario
from perfmodel.hardware import load_catalog

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "user-chip"
MY_CHIPS = EXAMPLES / "my_chips.toml"
MY_SCENARIO = EXAMPLES / "scenario.toml"


def _fig(v: float) -> str:
    return f'{{ value = {v!r}, source = "test", confidence = "vendor" }}'


def chip_toml(key: str = "my_chip", *, drop: tuple[str, ...] = (), **figs: float) -> str:
    """A ``[chips.KEY]`` table with H100-like figures, ``figs`` replacing some, ``drop``
    leaving some out."""
    base = dict(
        bf16_flops_per_s=1500e12,
        fp32_flops_per_s=80e12,
        dram_bytes=144e9,
        dram_bytes_per_s=5e12,
        sram_bytes=64e6,
        sram_bytes_per_s=8e12,
        scaleup_bytes_per_s_per_dir=450e9,
        scaleout_bytes_per_s_per_dir=50e9,
        tdp_w=900.0,
        allin_power_w=1700.0,
        allin_price_usd=40000.0,
    )
    base.update(figs)
    body = "\n".join(f"{k} = {_fig(v)}" for k, v in base.items() if k not in drop)
    return f'[chips.{key}]\nname = "test chip"\nkind = "gpu"\n{body}\n'


@pytest.fixture
def run(capfd):
    """``run(argv) -> (rc, out, err)``: exit 0 or exit 2 with one line, no traceback."""

    def go(argv: list[str]) -> tuple[int, str, str]:
        rc = cli.main([str(a) for a in argv])
        out, err = capfd.readouterr()
        assert "Traceback" not in err, err
        assert rc in (0, 2), (rc, err[-2000:])
        if rc == 2:
            lines = [s for s in err.splitlines() if s.strip()]
            assert len(lines) == 1, err
        elif "--json" in argv:
            json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
        return rc, out, err

    return go


# --------------------------------------------------------------------------------------
# ChipSpec and content digests (no model runs)
# --------------------------------------------------------------------------------------


def test_builtin_chip_is_builtin_and_user_chip_is_keyed_by_its_content(tmp_path):
    assert chip_spec("h100").builtin and chip_spec("h100").cache_name == "h100_sxm"
    f = tmp_path / "c.toml"
    f.write_text(chip_toml())
    cat = load_catalog(f)
    s = chip_spec("my_chip", cat)
    assert not s.builtin and s.cache_name == f"my_chip@{s.digest}"
    assert s.source == str(f)
    assert chip_spec("h100", cat).builtin  # the built-in records are unchanged
    # the pytree is the user's figures
    assert float(s.chip().mem_bytes_per_s[1]) == 5e12
    f2 = tmp_path / "c2.toml"
    f2.write_text(chip_toml(dram_bytes_per_s=6e12))
    assert chip_spec("my_chip", load_catalog(f2)).digest != s.digest
    assert hash(s) == hash(chip_spec("my_chip", load_catalog(f)))  # lru_cache key


def test_price_alone_keeps_the_builtin_content(tmp_path):
    """A user's own H100 all-in price changes no performance figure: same digest (the
    shipped curves still serve it); a bandwidth does."""
    cat = load_catalog()
    rec = cat.chips["h100_sxm"]
    f = tmp_path / "p.toml"
    f.write_text(
        "[chips.h100_sxm]\n"
        + "\n".join(
            f"{k} = {{ best = {fig.best!r}, low = {fig.low!r}, high = {fig.high!r}, "
            f'source = "s", confidence = "{fig.confidence}"'
            + (', formula = "f"' if fig.confidence == "derived" else "")
            + " }"
            for k, fig in rec.figures.items()
            if k != "allin_price_usd"
        )
        + '\nallin_price_usd = { value = 1.0, source = "mine", confidence = "vendor" }\n'
    )
    mine = load_catalog(f)
    assert chip_spec("h100", mine).builtin
    f.write_text(f.read_text().replace("value = 1.0", "value = 2.0"))
    assert chip_spec("h100", load_catalog(f)).builtin


def test_shadowing_chip_never_gets_the_builtin_shipped_or_cached_curve(
    tmp_path, monkeypatch, fresh_caches
):
    """A user ``b200`` with other figures: the shipped b200 curve is not served; the
    computation runs on the user's pytree and its disk key carries the digest."""
    f = tmp_path / "b.toml"
    f.write_text(chip_toml("b200", bf16_flops_per_s=10.0e12))
    spec = chip_spec("b200", load_catalog(f))
    assert not spec.builtin
    seen: list = []

    def fake(chip, workload, pick, mode, k):
        seen.append(chip)
        return np.log(np.arange(1.0, k + 1.0))

    monkeypatch.setattr(cv, "_compute_curve", fake)
    wname = "llama3-8b"
    c_user = cv.grid_curve(spec, wname, max_count=64)
    assert seen == [spec] and float(seen[0].chip().peak_flops_per_s[1]) == 10e12
    builtin = cv.grid_curve("b200", wname, max_count=64)  # the shipped one, if current
    if cv._shipped():
        assert len(seen) == 1  # served from curves.npz, not recomputed
        assert not np.allclose(
            np.asarray(builtin.log_throughput)[: len(c_user.log_throughput)],
            np.asarray(c_user.log_throughput),
        )
    keys = [k for k in cv._disk(model_cache.CURVES_FILE) if f"|b200@{spec.digest}|{wname}|" in k]
    assert keys, list(cv._disk(model_cache.CURVES_FILE))
    # the stand-in never reads a shadowing chip's built-in spec ratio: its own peak
    v, src = cv.value_curve(spec, ((wname, 1.0),), [8.0], source="standin")
    assert "STAND-IN" in src and v[0] == pytest.approx(10e12 / 989.4e12 * 8**0.98)


def test_rate_cache_key_carries_the_digest(tmp_path, monkeypatch, fresh_caches):
    f = tmp_path / "b.toml"
    f.write_text(chip_toml("hw3", int8_ops_per_s=7e15))
    spec = chip_spec("hw3", load_catalog(f))
    got: list = []
    monkeypatch.setattr(fv, "_inference_rate", lambda s, *a: got.append(s) or 42.0)
    assert fv.chip_rate(spec, "video-driving", "forward", "best", "auto", 1) == 42.0
    assert got == [spec]
    keys = model_cache._disk(fv.RATES_FILE)
    assert any(f"|hw3@{spec.digest}|video-driving|forward|" in k for k in keys)


@pytest.mark.parametrize(
    "drop,field",
    [
        (("fp32_flops_per_s",), "chips.my_chip.fp32_flops_per_s"),
        (("bf16_flops_per_s", "fp32_flops_per_s"), "chips.my_chip.bf16_flops_per_s"),
    ],
)
def test_missing_figure_is_one_line_naming_chip_and_field(tmp_path, drop, field):
    f = tmp_path / "m.toml"
    f.write_text(chip_toml(drop=drop, fp8_flops_per_s=3000e12))
    spec = chip_spec("my_chip", load_catalog(f))
    with pytest.raises(InputError, match=re.escape(field)) as e:
        check_trainable(spec, "bf16")
    assert "\n" not in str(e.value) and str(f) in str(e.value)


# --------------------------------------------------------------------------------------
# Scenarios naming user chips
# --------------------------------------------------------------------------------------


def test_scenario_offer_names_a_user_chip_only_with_its_catalog():
    with pytest.raises(ValueError, match=r"offers\.mine\.chip = 'my_chip' is not a catalog chip"):
        load_scenario(MY_SCENARIO)
    cat = load_catalog(MY_CHIPS)
    sc = load_scenario(MY_SCENARIO, catalog=cat)
    specs = sc.chip_specs()
    assert isinstance(specs[1], ChipSpec) and specs[1].key == "my_chip"
    assert not specs[1].builtin and specs[0].builtin
    assert specs[1].catalog is cat


def test_plan_without_catalog_names_the_offer(run):
    rc, _, err = run(["plan", "--scenario", MY_SCENARIO])
    assert rc == 2 and "offers.mine.chip" in err and "my_chip" in err


def test_plan_with_an_untrainable_user_chip_names_chip_and_field(run, tmp_path, monkeypatch):
    monkeypatch.setenv("PERFMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "bad.toml"
    f.write_text(chip_toml(drop=("fp32_flops_per_s",)))
    rc, _, err = run(["plan", "--catalog", f, "--scenario", MY_SCENARIO])
    assert rc == 2
    assert "chips.my_chip.fp32_flops_per_s is missing" in err and str(f) in err


def test_train_and_equiv_with_an_untrainable_user_chip(run, tmp_path, monkeypatch):
    monkeypatch.setenv("PERFMODEL_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "bad.toml"
    f.write_text(chip_toml(drop=("fp32_flops_per_s",)))
    rc, _, err = run(
        ["train", "--catalog", f, "--chip", "my_chip", "--chips", "8", "--workload", "llama3-8b"]
    )
    assert rc == 2 and "chips.my_chip.fp32_flops_per_s" in err
    rc, _, err = run(
        ["equiv", "--catalog", f, "--chip", "my_chip", "--count", "8", "--workload", "llama3-8b"]
    )
    assert rc == 2 and "chips.my_chip.fp32_flops_per_s" in err


# --------------------------------------------------------------------------------------
# --catalog fuzzed on every command that takes it: bad files are one line, exit 2
# --------------------------------------------------------------------------------------

BAD_VALUES = ["-1.0", "nan", "inf", "1e400", '"fast"', "true", "[1, 2]", "0.0"]
FIELDS = ["bf16_flops_per_s", "dram_bytes_per_s", "dram_bytes", "tdp_w", "sram_bytes"]


@st.composite
def catalog_text(draw) -> str:
    """A catalog file: valid, with one bad figure, a missing required field, an
    unknown key, a bad key name, or not TOML at all."""
    kind = draw(st.sampled_from(["ok", "bad_value", "missing", "unknown", "key", "garbage"]))
    key = "my_chip"
    if kind == "ok":
        return chip_toml(key)
    if kind == "bad_value":
        f, v = draw(st.sampled_from(FIELDS)), draw(st.sampled_from(BAD_VALUES))
        return (
            chip_toml(key, drop=(f,))
            + f'{f} = {{ value = {v}, source = "t", confidence = "vendor" }}\n'
        )
    if kind == "missing":
        return chip_toml(key, drop=(draw(st.sampled_from(["dram_bytes", "tdp_w"])),))
    if kind == "unknown":
        return chip_toml(key) + 'speed = { value = 1.0, source = "t", confidence = "vendor" }\n'
    if kind == "key":
        return chip_toml(draw(st.sampled_from(['"../x"', '"a b"', '"x.y"'])))
    return draw(st.sampled_from(["[chips.x\n", "= 3", "\x00\x01", "[[chips]]\nx=1\n", ""]))


def _argv(cmd: str, cat: Path, tmp: Path) -> list:
    """A command line that stops right after the catalog loads (nothing slow runs)."""
    nowhere = tmp / "absent.toml"
    return {
        "plan": ["plan", "--catalog", cat, "--scenario", nowhere],
        "train": ["train", "--catalog", cat, "--chip", "not_a_chip", "--chips", "8"],
        "equiv": ["equiv", "--catalog", cat, "--chip", "not_a_chip", "--count", "8"],
        "sweep": ["sweep", nowhere, "--catalog", cat, "--out", tmp / "out"],
        "compare": ["compare", nowhere, nowhere, "--catalog", cat],
    }[cmd]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cmd=st.sampled_from(["plan", "train", "equiv", "sweep", "compare"]),
    text=catalog_text(),
    json_flag=st.booleans(),
)
def test_catalog_fuzz_is_one_line_exit_2(run, tmp_path_factory, cmd, text, json_flag):
    tmp = tmp_path_factory.mktemp("fuzz")
    cat = tmp / "cat.toml"
    cat.write_bytes(text.encode("utf-8", "surrogatepass"))
    argv = _argv(cmd, cat, tmp) + (["--json"] if json_flag else [])
    rc, _, err = run(argv)
    assert rc == 2, err
    # the catalog's own error names the file; a valid one gets to the next check
    assert str(cat) in err or "not_a_chip" in err or "absent.toml" in err, err


@pytest.mark.parametrize("cmd", ["plan", "train", "equiv", "sweep", "compare"])
def test_catalog_path_errors_name_the_path(run, tmp_path, cmd):
    for bad in (tmp_path / "missing.toml", tmp_path):
        rc, _, err = run(_argv(cmd, bad, tmp_path))
        assert rc == 2 and str(bad) in err, err


def test_catalog_replacing_a_builtin_needs_allow_override(run, tmp_path):
    f = tmp_path / "b.toml"
    f.write_text(chip_toml("b200"))
    rc, _, err = run(["plan", "--catalog", f, "--scenario", tmp_path / "absent.toml"])
    assert rc == 2 and "--allow-override" in err and "chips.b200" in err


# --------------------------------------------------------------------------------------
# End to end: plan, train and equiv on the shipped example agree
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_plan_values_the_user_chip_with_the_training_model(run, tmp_path, fresh_caches):
    """A scenario in tmp_path offering only enough of the user chip for 64 chips: the
    plan's value of 64 chips (its last value-curve breakpoint) is the capacity-mode
    throughput ``train`` gives, over the H100 reference rate."""
    from perfmodel import training as tr
    from perfmodel.equivalence import DEFAULT_GRID

    scen = tmp_path / "s.toml"
    text = MY_SCENARIO.read_text()
    text = text.replace("supply_units = [0, 200, 300, 300]", "supply_units = [0, 8, 0, 0]")
    text = text.replace("supply_units = 400", "supply_units = 0")
    scen.write_text(text)
    cat_file = tmp_path / "my_chips.toml"
    cat_file.write_text(MY_CHIPS.read_text())
    rc, out, err = run(["plan", "--catalog", cat_file, "--scenario", scen, "--json"])
    assert rc == 0, err
    d = json.loads(out)
    mine = d["inputs"]["offers"]["mine"]
    assert mine["chip"] == "my_chip" and mine["chip_catalog"] == str(cat_file)
    assert d["inputs"]["pick"] == "best" and d["inputs"]["catalog_files"] == [str(cat_file)]
    bp = mine["value_curve"]["hall"]
    assert bp["chips"][-1] == 64.0
    cat = load_catalog(cat_file)
    counts = [n for n in DEFAULT_GRID if n <= 64]
    t = np.asarray(
        tr.throughput_curve(
            "llama3-8b", "my_chip", np.asarray(counts), catalog=cat, chip=cat.chip("my_chip")
        )
    )
    per_chip = t / np.asarray(counts, float)
    k = int(np.argmax(per_chip))
    want = 64 * per_chip[k] / cv.reference_rate("llama3-8b")
    assert bp["h100e"][-1] == pytest.approx(want, rel=1e-7)  # make_curve: 1e-9 slope
    # `train` at the best slice gives that throughput
    rc, out, err = run(
        ["train", "--catalog", cat_file, "--chip", "my_chip", "--chips", counts[k]]
        + ["--workload", "llama3-8b", "--json"]
    )
    assert rc == 0, err
    tj = json.loads(out)
    assert tj["tokens_per_s"] == pytest.approx(t[k], rel=1e-9)
    assert tj["chip_catalog"] == str(cat_file)
    # `equiv` in capacity mode agrees with the plan's value
    rc, out, err = run(
        ["equiv", "--catalog", cat_file, "--chip", "my_chip", "--count", "64"]
        + ["--workload", "llama3-8b", "--mode", "capacity", "--json"]
    )
    assert rc == 0, err
    assert json.loads(out)["h100e"] == pytest.approx(want, rel=1e-6)


def test_sweep_over_a_scenario_with_a_user_chip(run, tmp_path):
    """``sweep --catalog``: the fleet model plans a scenario offering a user chip (the
    labelled stand-in values here: fast), records the chip's digest in the model's
    config (a resume must see the same figures), and without the catalog names the
    offer."""
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[sweep]\nmodel = "fleet"\nsamples = 4\nchunk_size = 4\n'
        f'[model]\nscenario = "{MY_SCENARIO}"\nvalue_source = "standin"\n'
        "catalog_ranges = false\n"
    )
    rc, _, err = run(["sweep", spec, "--out", tmp_path / "no", "--json"])
    assert rc == 2 and "offers.mine.chip" in err
    rc, out, err = run(["sweep", spec, "--catalog", MY_CHIPS, "--out", tmp_path / "o", "--json"])
    assert rc == 0, err
    assert json.loads(out)["rows"] == 4
    digest = chip_spec("my_chip", load_catalog(MY_CHIPS)).digest
    man = (tmp_path / "o" / "manifest.json").read_text()
    assert f"my_chip@{digest}" in man


@pytest.mark.parametrize("pick", ["low", "high"])
def test_problem_records_its_pick_and_chips(pick):
    """The pick used to build a Problem and each offer's resolved chip are on the
    Problem, and the plan JSON's inputs carry them (self-describing plans)."""
    from perfmodel.fleet import build_problem, solve
    from perfmodel.fleet.explain import plan_inputs
    from perfmodel.fleet.testing import generate_scenario

    sc = generate_scenario(3, 3, 1, 3)
    pr = build_problem(sc, value_source="standin", pick=pick)
    assert pr.pick == pick
    assert [c.key for c in pr.chip_specs] == [chip_spec(o.chip).key for o in sc.offers]
    assert all(c.builtin for c in pr.chip_specs)
    d = plan_inputs(solve(pr, method="highs"))
    assert d["pick"] == pick
    assert {o["chip_catalog"] for o in d["offers"].values()} == {"built-in"}


def test_equivalence_curve_cache_is_keyed_by_content(tmp_path):
    """``perfmodel.equivalence.model_curve``'s cache: a shadowing chip with other
    figures is computed on its own pytree; another catalog object with the same content
    is served from the cache."""
    from perfmodel.equivalence import clear_cache, model_curve
    from perfmodel.hardware import PRECISION_INDEX

    bf16 = PRECISION_INDEX["bf16"]
    calls: list[float] = []

    def toy(workload, chip_key, counts, *, precision=None, chip=None):
        assert chip is not None  # model_curve always passes the pytree
        calls.append(float(chip.peak_flops_per_s[bf16]))
        return np.asarray(counts, float) * calls[-1] / 1e12

    clear_cache()
    f = tmp_path / "b.toml"
    f.write_text(chip_toml("b200", bf16_flops_per_s=10e12))
    builtin = float(load_catalog().chip("b200").peak_flops_per_s[bf16])
    model_curve("b200", "llama3-8b", curve_fn=toy, grid=(1, 2, 4))
    model_curve("b200", "llama3-8b", curve_fn=toy, grid=(1, 2, 4), catalog=load_catalog(f))
    model_curve("b200", "llama3-8b", curve_fn=toy, grid=(1, 2, 4), catalog=load_catalog(f))
    assert calls == [builtin, 10e12]
    clear_cache()
