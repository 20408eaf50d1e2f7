"""The command line's result cache (perfmodel.result_cache): a repeated call prints
exactly what the first printed, without JAX; any changed input (a token, a named file's
content, a perfmodel file, a setting) is another key; a failed run, a command line that
writes a file and in-process ``main(argv)`` calls are never cached."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfmodel import cli, model_cache
from perfmodel import result_cache as rs

ROOF = ["roofline", "--chip", "h100", "--op", "layernorm", "--json"]

# one process as the `perfmodel` program runs it: main() reads sys.argv; reports the
# exit status, whether JAX was imported, and what was printed
PROGRAM = """
import contextlib, io, json, sys
sys.argv = ["perfmodel", *json.loads(sys.argv[1])]
from perfmodel.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = main()
print(json.dumps(dict(rc=rc, jax="jax" in sys.modules, out=out.getvalue(), err=err.getvalue())))
"""


def _program(argv: list[str], cache_dir) -> dict:
    env = {**os.environ, "PERFMODEL_CACHE_DIR": str(cache_dir)}
    env.pop("PERFMODEL_RESULT_CACHE", None)
    p = subprocess.run(
        [sys.executable, "-c", PROGRAM, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)


@pytest.fixture
def cache(fresh_caches):
    return fresh_caches


def test_a_repeated_call_prints_the_same_without_jax(cache):
    first = _program([*ROOF, "--verbose"], cache)
    assert first["rc"] == 0 and first["jax"]
    assert "result cache miss" in first["err"]
    second = _program([*ROOF, "--verbose"], cache)
    assert second["rc"] == 0 and not second["jax"]  # no model code ran
    assert second["out"] == first["out"]
    assert "result cache hit" in second["err"] and "result cache" not in second["out"]
    json.loads(second["out"])  # still one strict JSON document
    # without --verbose another entry: computed once, then served the same
    third = _program(ROOF, cache)
    assert third["jax"] and third["out"] == first["out"] and third["err"] == ""
    # a hit always says so, on stderr, in one line
    fourth = _program(ROOF, cache)
    assert not fourth["jax"] and fourth["out"] == first["out"]
    assert fourth["err"].count("\n") == 1 and "result cache: the stored output" in fourth["err"]


def test_a_failed_run_is_not_stored(cache):
    bad = ["roofline", "--chip", "no-such-chip"]
    for _ in range(2):
        r = _program(bad, cache)
        assert r["rc"] == 2 and "error" in r["err"]
    model_cache._disk.cache_clear()
    assert model_cache._read(model_cache.cache_path(model_cache.RESULTS_FILE)) == {}


def test_main_with_argv_never_uses_the_cache(cache, capsys):
    assert cli.main(ROOF) == 0
    assert not (cache / model_cache.RESULTS_FILE).exists()
    assert json.loads(capsys.readouterr().out)["op"].startswith("layernorm")


def test_a_stored_entry_replays_stdout_and_stderr(cache, monkeypatch, capsys):
    key = rs.result_key(ROOF, {})
    assert key is not None
    rs.store(key, '{"x": 1}\n', "a note\n", 1.5)
    model_cache._disk.cache_clear()
    monkeypatch.setattr(sys, "argv", ["perfmodel", *ROOF])
    monkeypatch.setattr(rs, "environment", lambda env: [])
    assert cli.main() == 0
    got = capsys.readouterr()
    assert got.out == '{"x": 1}\n'
    note, hit = got.err.splitlines()
    assert note == "a note" and hit.startswith("perfmodel roofline: result cache: the stored")


@pytest.mark.parametrize(
    "entry", [None, "text", {"stdout": 1}, {"stdout": "", "stderr": "", "seconds": "x"}]
)
def test_a_malformed_entry_is_a_miss(cache, entry):
    key = rs.result_key(ROOF, os.environ)
    assert key is not None
    model_cache.put(key, entry, model_cache.RESULTS_FILE)
    found = rs.lookup(ROOF)
    assert found is not None and found.key == key and found.entry is None


def test_the_cache_can_be_turned_off():
    assert rs.lookup(ROOF, {"PERFMODEL_RESULT_CACHE": "0"}) is None
    assert rs.lookup(ROOF, {"PERFMODEL_RESULT_CACHE": "1"}) is not None


TOKENS = st.lists(
    st.text(st.characters(codec="utf-8", exclude_characters="\0/.-"), min_size=1, max_size=8),
    max_size=5,
)


@given(TOKENS, TOKENS)
def test_the_key_is_the_command_line_token_by_token(a, b):
    ka, kb = rs.result_key(["net", *a], {}), rs.result_key(["net", *b], {})
    if any(os.path.exists(t) for t in (*a, *b)):
        return  # a token that names a file in the test's directory
    assert ka is not None and kb is not None
    assert (ka == kb) == (a == b)


@pytest.mark.parametrize("command", ["chips", "plan", "sweep", "serve", ""])
def test_only_the_cached_commands_have_keys(command):
    assert rs.result_key([command, "--json"] if command else [], {}) is None


@pytest.mark.parametrize("opt", ["--plot", "--plo", "--pl", "--plot=x.png"])
def test_a_command_line_that_writes_a_file_is_not_cached(opt):
    assert rs.writes_file(["train", opt], ("--plot",))
    assert rs.result_key(["train", "--chip", "h100", opt, "x.png"], {}) is None
    assert not rs.writes_file(["train", "--pick", "low", "--json"], ("--plot",))


def test_a_named_file_is_in_the_key_by_content(tmp_path):
    f = tmp_path / "cat.toml"
    f.write_text("a = 1\n")
    argv = ["net", "h100", "--catalog", str(f)]
    k1 = rs.result_key(argv, {})
    assert k1 == rs.result_key(argv, {})
    f.write_text("a = 2\n")
    k2 = rs.result_key(argv, {})
    assert k2 is not None and k2 != k1
    assert rs.result_key(["net", "h100", f"--catalog={f}"], {}) not in (None, k1, k2)
    # a directory is not a file the key can hold: not cached
    assert rs.result_key(["net", "h100", "--catalog", str(tmp_path)], {}) is None


def test_settings_and_perfmodel_files_are_in_the_key(monkeypatch):
    base = rs.result_key(ROOF, {"HOME": "/a"})
    assert base == rs.result_key(ROOF, {"HOME": "/b"})  # not a setting of the model
    for name in ("JAX_PLATFORMS", "XLA_FLAGS", "PERFMODEL_CACHE_DIR", "CUDA_VISIBLE_DEVICES"):
        assert rs.result_key(ROOF, {"HOME": "/a", name: "x"}) != base
    monkeypatch.setattr(model_cache, "package_fingerprint", lambda: "0" * 16)
    assert rs.result_key(ROOF, {"HOME": "/a"}) != base


def test_the_package_fingerprint_covers_every_file_but_bytecode(tmp_path, monkeypatch):
    (tmp_path / "commands").mkdir()
    (tmp_path / "commands" / "net.py").write_text("x = 1\n")
    (tmp_path / "data.toml").write_text("a = 1\n")
    monkeypatch.setattr(model_cache, "_ROOT", tmp_path)

    def fingerprint():
        model_cache.package_fingerprint.cache_clear()
        return model_cache.package_fingerprint()

    try:
        base = fingerprint()
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "net.pyc").write_bytes(b"\0")
        assert fingerprint() == base
        (tmp_path / "data.toml").write_text("a = 2\n")
        changed = fingerprint()
        assert changed != base
        (tmp_path / "commands" / "net.py").write_text("x = 2\n")
        assert fingerprint() not in (base, changed)
    finally:
        model_cache.package_fingerprint.cache_clear()


def test_the_tee_writes_through_and_records():
    sink = io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout = sink
    try:
        with rs.recording() as (out, err):
            print("hello")
            print("warn", file=sys.stderr)
    finally:
        sys.stdout, sys.stderr = saved
    assert sink.getvalue() == "hello\n" and out.getvalue() == "hello\n"
    assert err.getvalue() == "warn\n"
