"""The one on-disk curve cache (perfmodel.model_cache) behind model_curve and the planner:
a hit equals the fresh search to the last bit; a changed model file or other chip
figures miss it; a corrupt file or entry is recomputed; writes stay in the cache
directory and leave no temporary file."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel import model_cache
from perfmodel.equivalence import model as eqm
from perfmodel.hardware import load_catalog

GRID = (1, 2, 4, 8)
WORKLOAD = "llama3-8b"


@pytest.fixture
def searches(fresh_caches, monkeypatch):
    """A fresh cache directory and a stand-in for the model's search that records each
    chip it runs on (its bf16 peak) and returns irrational throughputs."""
    seen: list[float] = []

    def fake(fn, workload, chip_key, counts, *, precision, chip, catalog):
        assert fn in eqm.MODEL_FNS
        peak = float(chip.peak_flops_per_s[1])
        seen.append(peak)
        return np.sqrt(np.asarray(counts, float) * np.pi) * peak / 1e12

    monkeypatch.setattr(eqm, "call_curve_fn", fake)
    return seen


def _fresh_process():
    """What a new process sees: no in-process curves, the cache file read again."""
    eqm.clear_cache()
    model_cache._disk.cache_clear()


def _curve(**kw):
    c = eqm.model_curve("b200", WORKLOAD, grid=GRID, mode="capacity", **kw)
    return np.asarray(c.log_throughput)


def test_warm_curve_is_the_cold_one_to_the_last_bit(searches, tmp_path):
    cold = _curve()
    assert len(searches) == 1
    _fresh_process()
    warm = _curve()
    assert len(searches) == 1  # read from the disk, not searched again
    assert warm.tobytes() == cold.tobytes()
    # one raw entry serves both modes
    job = np.asarray(eqm.model_curve("b200", WORKLOAD, grid=GRID, mode="job").log_throughput)
    assert len(searches) == 1 and np.all(np.isfinite(job))
    # only the cache file, no temporary left behind, nothing else written
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["curves.json"]


def test_a_changed_model_file_misses_the_cache(searches, monkeypatch):
    _curve()
    _fresh_process()
    monkeypatch.setattr(model_cache, "model_fingerprint", lambda: "0123456789abcdef")
    _curve()
    assert len(searches) == 2


def test_the_fingerprint_follows_the_model_files(tmp_path, monkeypatch):
    (tmp_path / "equivalence").mkdir()
    (tmp_path / "equivalence" / "a.py").write_text("x = 1\n")
    (tmp_path / "roofline.py").write_text("y = 2\n")
    monkeypatch.setattr(model_cache, "_ROOT", tmp_path)
    monkeypatch.setattr(model_cache, "FINGERPRINT_FILES", ("equivalence", "roofline.py"))
    fp = model_cache.model_fingerprint.__wrapped__
    before = fp()
    assert fp() == before
    (tmp_path / "equivalence" / "a.py").write_text("x = 3\n")
    assert fp() != before
    (tmp_path / "roofline.py").unlink()  # a listed file that is gone is an error, not a skip
    with pytest.raises(FileNotFoundError, match="roofline.py"):
        fp()


def test_every_listed_model_file_exists():
    for name in model_cache.FINGERPRINT_FILES:
        assert (model_cache._ROOT / name).exists(), name


def test_other_chip_figures_miss_the_cache(searches, tmp_path):
    _curve()
    f = tmp_path / "b.toml"
    figs = dict(
        bf16_flops_per_s=10e12,
        fp32_flops_per_s=1e12,
        dram_bytes=144e9,
        dram_bytes_per_s=5e12,
        sram_bytes=64e6,
        sram_bytes_per_s=8e12,
        scaleup_bytes_per_s_per_dir=450e9,
        scaleout_bytes_per_s_per_dir=50e9,
        tdp_w=900.0,
    )
    body = "\n".join(
        f'{k} = {{ value = {v!r}, source = "test", confidence = "vendor" }}'
        for k, v in figs.items()
    )
    f.write_text(f'[chips.b200]\nname = "mine"\nkind = "gpu"\n{body}\n')
    _fresh_process()
    _curve(catalog=load_catalog(f))
    assert searches[-1] == 10e12 and len(searches) == 2
    _fresh_process()
    _curve()  # the built-in b200 is still cached
    assert len(searches) == 2


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_a_corrupt_cache_file_is_recomputed(searches, text):
    cold = _curve()
    _fresh_process()
    model_cache.cache_path().write_text(text)
    again = _curve()
    assert len(searches) == 2 and again.tobytes() == cold.tobytes()
    _fresh_process()
    _curve()  # the rewritten file serves it again
    assert len(searches) == 2


@pytest.mark.parametrize("entry", [[1.0, 2.0], ["a", "b", "c", "d"], "text", None])
def test_a_corrupt_entry_is_recomputed(searches, entry):
    cold = _curve()
    (key,) = model_cache._disk(model_cache.CURVES_FILE)
    _fresh_process()
    model_cache.put(key, entry)
    _fresh_process()
    assert _curve().tobytes() == cold.tobytes()
    assert len(searches) == 2


# --- the planner's value-curve readings (model_cache.VALUES_FILE) ---------------------


def _values(counts=(3.0, 50.0, 700.0)):
    from perfmodel.fleet import curves as cv

    return cv.value_curve("h100_sxm", [(WORKLOAD, 1.0)], counts)[0]


def _fresh_planner_process():
    from perfmodel.fleet import curves as cv

    _fresh_process()
    cv._curve_by_name.cache_clear()
    cv._ref_log_rate.cache_clear()


def _no_curve(*a, **k):
    raise AssertionError("a cached value evaluated a curve")


def test_warm_values_are_the_cold_ones_to_the_last_bit(fresh_caches, monkeypatch):
    from perfmodel.fleet import curves as cv

    cold = _values()
    assert (fresh_caches / model_cache.VALUES_FILE).is_file()
    _fresh_planner_process()
    monkeypatch.setattr(cv, "grid_curve", _no_curve)  # a hit evaluates no curve
    warm = _values()
    assert warm.tobytes() == cold.tobytes()
    with pytest.raises(AssertionError, match="evaluated a curve"):
        _values((3.0, 50.0, 701.0))  # other counts: another entry


@pytest.mark.parametrize("entry", [[1.0, 2.0], ["a", "b", "c"], [1.0, -1.0, 2.0], [1, 2, 3], "x"])
def test_a_corrupt_value_entry_is_recomputed(fresh_caches, entry):
    cold = _values()
    (key,) = model_cache._disk(model_cache.VALUES_FILE)
    model_cache.put(key, entry, model_cache.VALUES_FILE)
    _fresh_planner_process()
    assert _values().tobytes() == cold.tobytes()


def test_a_changed_value_code_misses_the_values(fresh_caches, monkeypatch):
    from perfmodel.fleet import curves as cv

    _values()
    _fresh_planner_process()
    monkeypatch.setattr(cv, "_values_code", lambda: "0123456789ab")
    calls = []
    real = cv.grid_curve
    monkeypatch.setattr(cv, "grid_curve", lambda *a, **k: calls.append(1) or real(*a, **k))
    _values()
    assert calls
