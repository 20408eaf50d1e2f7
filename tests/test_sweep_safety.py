"""Sweeps that are safe to share and to trust: a lock on the output directory, the spec,
seed and model fingerprint in the manifest, a checksum per chunk verified on resume,
and output paths that are directories of a sweep only (issue 16 item 4)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import perfmodel  # noqa: F401  (x64)
from perfmodel import cli
from perfmodel.errors import InputError
from perfmodel.sweep import engine

REPO = Path(__file__).resolve().parent.parent


def toy_spec(samples=12, seed=0, chunk=4):
    data = {"sweep": {"model": "toy", "samples": samples, "seed": seed, "chunk_size": chunk}}
    return engine.parse_spec(data, "<test>")


def values(path):
    t = engine.load_results(path)
    return {c: t.column(c).to_numpy() for c in t.column_names}


def test_second_run_into_a_locked_directory_refuses(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    with engine.sweep_lock(out):  # as a concurrent run holds it
        with pytest.raises(InputError, match=r"is in use by another sweep \(pid \d+"):
            engine.run_sweep(toy_spec(), out)
        with pytest.raises(InputError, match="in use"):  # --overwrite does not take it over
            engine.run_sweep(toy_spec(seed=1), out, overwrite=True)
    assert not (out / engine.MANIFEST).exists()  # the refused runs wrote nothing
    r = engine.run_sweep(toy_spec(), out)  # released: runs
    assert r.complete and r.chunks_computed == 3


@pytest.mark.slow
def test_concurrent_processes_never_mix(tmp_path):
    """Two real processes, seeds 0 and 1, into one directory: one of them runs, the
    other refuses (the lock) or finds the other's manifest (a different seed); the
    directory then holds one seed's results only, equal to a run of that seed alone."""
    spec = tmp_path / "toy.toml"
    spec.write_text(
        '[sweep]\nmodel = "toy"\nsamples = 64\nchunk_size = 4\n[model]\nwork_iters = 3\n'
    )
    out = tmp_path / "shared"
    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "sweep", str(spec), "--out", str(out), "--seed", s],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for s in ("0", "1")
    ]
    res = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in res)
    assert codes == [0, 2], res
    loser_err = next(err for rc, _, err in res if rc == 2)
    assert loser_err.count("\n") == 1 and ("in use" in loser_err or "seed" in loser_err)
    seed = engine.read_manifest(out)["identity"]["seed"]
    alone = tmp_path / "alone"
    engine.run_sweep(engine.load_spec(spec), alone, seed=seed)
    a, b = values(out), values(alone)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_manifest_hashes_spec_seed_and_model_and_refuses_other_settings(tmp_path):
    out = tmp_path / "m"
    engine.run_sweep(toy_spec(), out)
    man = engine.read_manifest(out)
    assert len(man["hashes"]["spec"]) == 64
    assert set(man["hashes"]["model"]) == {"perfmodel_sha256", "jax", "numpy"}
    with pytest.raises(InputError, match=r"seed: directory has 0, this run has 7"):
        engine.run_sweep(toy_spec(seed=7), out)
    # the same spec with other model code or data: refused, naming what differs
    man["hashes"]["model"]["perfmodel_sha256"] = "0" * 64
    (out / engine.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(InputError, match=r"other model code or data \(perfmodel_sha256"):
        engine.run_sweep(toy_spec(), out)


def _flip_bytes(path: Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupted_chunk_is_detected_recomputed_and_reported(tmp_path, capsys):
    spec = tmp_path / "toy.toml"
    spec.write_text('[sweep]\nmodel = "toy"\nsamples = 16\nchunk_size = 4\n')
    out = tmp_path / "c"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--json"]) == 0
    before = values(out)
    capsys.readouterr()
    victim = engine.chunk_path(out, 2)
    _flip_bytes(victim)
    # reading the results directly refuses the bad chunk
    with pytest.raises(InputError, match=r"chunk-000002.parquet: fails its checksum"):
        engine.load_results(out)
    assert cli.main(["sweep", str(spec), "--out", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    assert "failed their checksum" in cap.err and "chunk-000002.parquet" in cap.err
    run = json.loads(cap.out)["run"]
    assert run["chunks_recomputed_bad"] == [2] and run["chunks_computed"] == 1
    after = values(out)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_truncated_chunk_and_missing_checksum_are_recomputed(tmp_path):
    out = tmp_path / "t"
    engine.run_sweep(toy_spec(), out)
    before = values(out)
    p0 = engine.chunk_path(out, 0)
    p0.write_bytes(p0.read_bytes()[:50])
    engine.checksum_path(engine.chunk_path(out, 1)).unlink()
    r = engine.run_sweep(toy_spec(), out)
    assert r.chunks_recomputed_bad == (0, 1) and r.chunks_computed == 2
    after = values(out)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_finished_sweep_json_is_strict_and_has_no_nan(tmp_path, capsys):
    spec = tmp_path / "toy.toml"
    spec.write_text('[sweep]\nmodel = "toy"\nsamples = 8\nchunk_size = 4\n')
    argv = ["sweep", str(spec), "--out", str(tmp_path / "f"), "--json"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main(argv) == 0  # finished: nothing computed
    text = capsys.readouterr().out
    d = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in --json output"))
    assert d["run"]["rows_per_s"] is None and d["run"]["chunks_computed"] == 0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda tmp: "", r"--out = '' must be a directory path"),
        (lambda tmp: "   ", r"--out = '   ' must be a directory path"),
        (lambda tmp: _file(tmp / "f.txt"), r"exists and is not a directory"),
        (lambda tmp: _other_files(tmp / "src"), r"is a directory of other files \(1, e\.g\."),
        (lambda tmp: _orphan_chunks(tmp / "o"), r"holds chunk files but no manifest\.json"),
    ],
)
def test_bad_out_paths_are_refused(tmp_path, capsys, make, match):
    spec = tmp_path / "toy.toml"
    spec.write_text('[sweep]\nmodel = "toy"\nsamples = 4\n')
    out = make(tmp_path)
    listing = _listing(tmp_path)
    for extra in ([], ["--overwrite"]):
        rc = cli.main(["sweep", str(spec), "--out", str(out), *extra])
        err = capsys.readouterr().err
        if "holds chunk files" in match and extra:  # --overwrite: deletes them and runs
            assert rc == 0
            continue
        assert rc == 2 and err.count("\n") == 1, err
        assert re.search(match, err), err
        assert _listing(tmp_path) == listing  # nothing written (but a lock file)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".lock-" not in p.name)


def _file(p: Path) -> str:
    p.write_text("not a directory")
    return str(p)


def _other_files(p: Path) -> str:
    p.mkdir()
    (p / "notes.md").write_text("mine")
    return str(p)


def _orphan_chunks(p: Path) -> str:
    p.mkdir()
    (p / "chunk-000000.parquet").write_bytes(b"x")
    return str(p)


def test_overwrite_deletes_only_sweep_files(tmp_path):
    out = tmp_path / "w"
    engine.run_sweep(toy_spec(), out)
    (out / "plot.png").write_bytes(b"png")  # a sweep's own plot may live there
    engine.run_sweep(toy_spec(seed=3), out, overwrite=True)
    assert (out / "plot.png").exists()
    assert engine.read_manifest(out)["identity"]["seed"] == 3
