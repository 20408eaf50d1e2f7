"""Stored programs (perfmodel.programs): a stored function returns what jax.jit returns,
to the bit; a second process loads the program instead of tracing it; the key separates
structures, shapes and static fields; bad files are ignored; nothing is written outside
the cache directory."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel import programs
from perfmodel.hardware import struct


@struct.dataclass
class Box:
    a: jnp.ndarray
    b: jnp.ndarray
    kind: str = struct.field(pytree_node=False, default="x")


@struct.dataclass
class Out:
    total: jnp.ndarray
    scaled: jnp.ndarray


TRACES: list[str] = []


def _model(box: Box, k):
    TRACES.append(box.kind)  # runs only when traced
    s = jnp.sin(box.a) * k + jnp.log1p(box.b**2)
    if box.kind == "y":  # a static field changes the program
        s = s * 2.0
    return Out(total=jnp.sum(s), scaled=s)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PERFMODEL_PROGRAM_CACHE", raising=False)
    return tmp_path


def _files(root):
    return sorted(p.name for p in (root / "programs").glob("*.program"))


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 5),
    k=st.floats(-3, 3, allow_nan=False),
    seed=st.integers(0, 2**16),
)
def test_stored_equals_jit_to_the_bit(tmp_path_factory, n, k, seed):
    os.environ["PERFMODEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("c"))
    try:
        rng = np.random.default_rng(seed)
        box = Box(a=jnp.asarray(rng.normal(size=n)), b=jnp.asarray(rng.normal(size=n)))
        f = programs.Stored(_model, "test.equal")
        got, want = f(box, k), jax.jit(_model)(box, k)
        assert isinstance(got, Out)
        for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    finally:
        del os.environ["PERFMODEL_CACHE_DIR"]


def test_one_file_per_structure_shape_and_static_field(cache):
    f = programs.Stored(_model, "test.keys")
    x3 = Box(a=jnp.ones(3), b=jnp.ones(3))
    f(x3, 1.0)
    f(x3, 2.0)  # same structure and shapes: the same program
    assert len(_files(cache)) == 1
    f(Box(a=jnp.ones(4), b=jnp.ones(4)), 1.0)  # another shape
    y3 = Box(a=jnp.ones(3), b=jnp.ones(3), kind="y")
    assert float(f(y3, 1.0).total) == pytest.approx(2 * float(f(x3, 1.0).total))
    assert len(_files(cache)) == 3
    assert not list((cache / "programs").glob("*.tmp"))
    assert {p.parent for p in cache.rglob("*") if p.is_file()} == {cache / "programs"}


def test_a_new_stored_function_loads_instead_of_tracing(cache):
    box = Box(a=jnp.arange(3.0), b=jnp.ones(3))
    first = programs.Stored(_model, "test.load")(box, 0.5)
    TRACES.clear()
    second = programs.Stored(_model, "test.load")(box, 0.5)  # as a new process would
    assert TRACES == []
    np.testing.assert_array_equal(np.asarray(first.scaled), np.asarray(second.scaled))


def test_a_corrupt_or_foreign_file_is_traced_again(cache):
    box = Box(a=jnp.arange(3.0), b=jnp.ones(3))
    want = np.asarray(programs.Stored(_model, "test.bad")(box, 1.0).scaled)
    (path,) = (cache / "programs").glob("*.program")
    for junk in (b"", programs.FORMAT + b"\x05", b"not a program at all"):
        path.write_bytes(junk)
        TRACES.clear()
        got = programs.Stored(_model, "test.bad")(box, 1.0)
        assert TRACES  # traced anew, and the file written again
        np.testing.assert_array_equal(np.asarray(got.scaled), want)
        assert path.read_bytes().startswith(programs.FORMAT)


def test_off_switch_and_transformations_use_the_plain_jit(cache, monkeypatch):
    f = programs.Stored(_model, "test.plain")
    box = Box(a=jnp.arange(3.0), b=jnp.ones(3))
    g = jax.grad(lambda k: f(box, k).total)(1.0)  # traced inputs: plain jit
    assert float(g) == pytest.approx(float(jnp.sum(jnp.sin(box.a))))
    assert _files(cache) == []
    monkeypatch.setenv("PERFMODEL_PROGRAM_CACHE", "0")
    f(box, 1.0)
    assert _files(cache) == []


def test_a_read_only_directory_keeps_the_program_in_memory(cache):
    ro = cache / "programs"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores the mode
            pytest.skip("the directory stays writable for this user")
        f = programs.Stored(_model, "test.ro")
        box = Box(a=jnp.arange(3.0), b=jnp.ones(3))
        assert float(f(box, 1.0).total) == float(jax.jit(_model)(box, 1.0).total)
        assert _files(cache) == []
    finally:
        ro.chmod(0o700)


def test_at_most_max_programs_files_are_kept(cache, monkeypatch):
    monkeypatch.setattr(programs, "MAX_PROGRAMS", 2)
    f = programs.Stored(_model, "test.prune")
    for n in (1, 2, 3, 4):
        f(Box(a=jnp.ones(n), b=jnp.ones(n)), 1.0)
    assert len(_files(cache)) == 2


LAYOUT_SEARCH = """
import sys
from perfmodel import training
r = training.best_layout("gpt3-175b", "h100", 64)
print(repr(float(r.step_time_s)), r.layout)
"""


@pytest.mark.slow
def test_layout_search_in_a_second_process_is_the_same_and_untraced(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFMODEL_")}
    env.update(PERFMODEL_CACHE_DIR=str(tmp_path), JAX_LOG_COMPILES="1")
    runs = [
        subprocess.run(
            [sys.executable, "-c", LAYOUT_SEARCH], capture_output=True, text=True, env=env
        )
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout
    assert "Finished tracing _search_grid" in runs[0].stderr
    assert "Finished tracing _search_grid" not in runs[1].stderr
