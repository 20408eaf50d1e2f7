"""The command line under generated argument lists (issue 16 item 9): every invocation
ends with exit 0 and finite output (strict JSON alone on stdout with ``--json``), or
exit 2 and exactly one line on stderr; never a traceback, NaN, inf or invalid JSON.
Also: the argv cases the fuzzing campaign found, file errors that name the path, and
no file written outside the output and cache directories.

``perfmodel.cli.main(argv)`` runs in this process (the CLI is slow to start), with
stdout and stderr captured at the file-descriptor level (what C code prints counts)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import cli

#: How Python prints a non-finite float in text ("nan", "inf", "-inf", "nan%"); JSON
#: output is parsed strictly instead (its "Infinity" would also match "Infinity Fabric").
NONFINITE = re.compile(r"(?<![\w.])[-+]?(nan|inf)(?![\w])")

#: One value that is bad in each way the campaign tried (and good ones).
NUMBERS = ["1", "8", "4096", "0", "-3", "2.5", "1e308", "-1e308", "nan", "inf", "-inf", "x", ""]
NAMES = ["h100", "b200", "dojo", "all", "", "../../etc/passwd", "H100", "tpu_v9"]


@pytest.fixture
def run(capfd):
    """``run(argv) -> (rc, out, err)`` with the contract checked."""

    def go(argv: list[str]) -> tuple[int, str, str]:
        rc = cli.main(list(argv))
        out, err = capfd.readouterr()
        check_contract(argv, rc, out, err)
        return rc, out, err

    return go


def check_contract(argv: list[str], rc: int, out: str, err: str) -> None:
    where = f"perfmodel {' '.join(map(repr, argv))}"
    assert "Traceback" not in err, f"{where}: traceback\n{err}"
    assert rc in (0, 2), f"{where}: exit {rc}\n{err[-2000:]}"
    if rc == 2:
        lines = [s for s in err.splitlines() if s.strip()]
        assert len(lines) == 1, f"{where}: exit 2 with {len(lines)} lines on stderr:\n{err}"
        return
    if "--json" not in argv:
        m = NONFINITE.search(out)
        assert not m, f"{where}: non-finite number in ...{out[max(0, m.start() - 300) : m.end()]}"
    else:

        def bad(c):
            raise AssertionError(f"{where}: {c} in --json output")

        json.loads(out, parse_constant=bad)  # one strict JSON document, alone on stdout


def _opt(flag: str, values) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), st.sampled_from(values).map(lambda v: [flag, v]))


def _flags(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*parts).map(lambda xs: [a for x in xs for a in x])


JSON = st.sampled_from([[], ["--json"]])
PICK = _opt("--pick", ["best", "low", "high", "middle"])

FAST_COMMANDS = st.one_of(
    _flags(st.just(["chips"]), PICK, JSON),
    _flags(st.just(["chip"]), st.sampled_from(NAMES).map(lambda n: [n]), JSON),
    _flags(st.just(["systems"]), PICK, JSON),
    _flags(
        st.just(["roofline"]),
        st.sampled_from(NAMES).map(lambda n: ["--chip", n]),
        _opt("--op", ["matmul", "bmm", "attention", "elementwise", "layernorm", "conv2d", "fft"]),
        _opt("--precision", ["bf16", "fp8", "fp4", "int8", "fp5", ""]),
        _opt("--dtype", ["bf16", "fp32"]),
        _opt("--m", NUMBERS),
        _opt("--n", NUMBERS),
        _opt("--seq", NUMBERS),
        _opt("--batch", NUMBERS),
        st.sampled_from([[], ["--ideal"], ["--causal"]]),
        JSON,
    ),
    _flags(
        st.just(["net"]),
        st.sampled_from(NAMES).map(lambda n: [n]),
        _opt("--bytes", ["1e6", "1e6,1e9", "0", "-1", "1e308", "nan", ",", "x"]),
        _opt("--group", ["8", "16,64", "0", "3.5", "1e9", "-8"]),
        _opt("--oversubscription", ["1", "2", "0.5", "inf"]),
        _opt("--members-per-domain", ["1", "4", "0", "2.5"]),
        JSON,
    ),
    _flags(
        st.just(["equiv"]),
        _opt("--chip", NAMES),
        _opt("--count", NUMBERS),
        st.sampled_from([[], ["--kind", "spec"], ["--kind", "price"], ["--kind", "budget"]]),
        _opt("--budget-usd", ["1e9", "0", "-5", "1e308", "nan"]),
        _opt("--precision", ["bf16", "fp8", "fp5"]),
        _opt("--pue", ["1.3", "0.5", "9"]),
        JSON,
    ),
    _flags(
        st.just(["calibrate"]),  # always one bad value: rejected before measuring
        st.sampled_from(
            [["--collectives", "-3"], ["--steps", "0"], ["--size", "huge"], ["--seed", "-1"]]
        ),
        _opt("--device", ["cpu", "tpu"]),
    ),
)


@pytest.fixture
def sweep_files(tmp_path):
    spec = tmp_path / "toy.toml"
    spec.write_text('[sweep]\nmodel = "toy"\nsamples = 8\nchunk_size = 4\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[sweep]\nmodel = "toy"\nsamples = 2.5\n')
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"[sweep]\n# caf\xe9\n")
    (tmp_path / "file.txt").write_text("x")
    return tmp_path


def _sweep_argv(root: Path) -> st.SearchStrategy[list[str]]:
    specs = [str(root / n) for n in ("toy.toml", "bad.toml", "latin1.toml", "none.toml")]
    specs += [str(root), "x" * 300]
    outs = [str(root / "o1"), str(root / "o2"), "", str(root / "file.txt"), str(root / "o1/../o1")]
    return _flags(
        st.just(["sweep"]),
        st.sampled_from(specs).map(lambda s: [s]),
        st.sampled_from(outs).map(lambda o: ["--out", o]),
        _opt("--samples", ["4", "8", "0", "-1", "2.5", "1e9x"]),
        _opt("--seed", ["0", "1", "-1"]),
        _opt("--chunk-size", ["2", "0"]),
        st.sampled_from([[], ["--overwrite"]]),
        JSON,
    )


#: Examples per fuzz test; ``PERFMODEL_FUZZ_EXAMPLES=N`` runs a longer campaign.
EXAMPLES = int(os.environ.get("PERFMODEL_FUZZ_EXAMPLES", "40"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(argv=FAST_COMMANDS)
def test_fuzzed_fast_commands_keep_the_contract(run, argv):
    run(argv)


@settings(FUZZ, max_examples=max(1, EXAMPLES * 5 // 8))
@given(data=st.data())
def test_fuzzed_sweeps_keep_the_contract(run, sweep_files, data):
    run(data.draw(_sweep_argv(sweep_files)))


SLOW_COMMANDS = st.one_of(
    _flags(
        st.just(["train"]),
        st.sampled_from(["h100", "b200", "tpu_v9"]).map(lambda n: ["--chip", n]),
        st.sampled_from(["8", "64", "0", "-1", "x"]).map(lambda n: ["--chips", n]),
        _opt("--workload", ["llama3-8b", "gpt3-5b", "", "nope"]),
        _opt(
            "--layout", ["tp=8", "tp=0", "pp=0", "cp=0", "tp=3", "tp=x", "tp=8,pp=2,dp=4", "zz=1"]
        ),
        _opt("--precision", ["bf16", "fp8"]),
        _opt("--global-batch", ["64", "0", "-5"]),
        _opt("--inference", ["forward", "decode"]),
        JSON,
    ),
    _flags(
        st.just(["plan"]),
        st.just(["--values", "standin"]),
        _opt("--budget-scale", ["1", "0.5", "0", "-1", "nan", "1e308"]),
        _opt("--power-scale", ["1", "2", "0"]),
        _opt("--target-h100e", ["1000", "nan", "-5"]),
        _opt("--objective", ["max-h100e", "min-cost"]),
        JSON,
    ),
    _flags(st.just(["claims"]), _opt("--only", ["12k-h100-diverted-to-x", "nope"]), JSON),
)


@pytest.mark.slow
@settings(FUZZ, max_examples=max(1, EXAMPLES * 3 // 10))
@given(argv=SLOW_COMMANDS)
def test_fuzzed_slow_commands_keep_the_contract(run, argv):
    run(argv)


# --------------------------------------------------------------------------------------
# the campaign's findings, one by one
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, match",
    [
        (["roofline", "--chip", "h100", "--m", "1e308"], "--m = 1e+308 must be"),
        (["roofline", "--chip", "h100", "--m", "nan"], "--m = nan must be a finite number"),
        (["roofline", "--chip", "h100", "--precision", "fp5"], "--precision 'fp5' must be one"),
        (["train", "--chip", "h100", "--chips", "8", "--layout", "tp=0"], "--layout tp = 0"),
        (["train", "--chip", "h100", "--chips", "8", "--layout", "pp=0"], "--layout pp = 0"),
        (["train", "--chip", "h100", "--chips", "8", "--layout", "cp=0"], "--layout cp = 0"),
        (["train", "--chip", "h100", "--chips", "8", "--workload", ""], "--workload = ''"),
        (["calibrate", "--collectives", "-3"], "--collectives = -3 must be an integer in"),
        (["net", "h100", "--bytes", "1e308"], "--bytes = 1e+308 must be"),
        (["plan", "--budget-scale", "1.7e308"], "--budget-scale = 1.7e+308 must be in"),
        (["equiv", "--chip", "h100", "--count", "1e308"], "--count = 1e+308 must be"),
        (["chip", "h900"], "unknown chip 'h900'"),
        (["roofline", "--chip", "h100", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_campaign_findings_are_one_line_errors(run, argv, match):
    rc, _, err = run(argv)
    assert rc == 2 and match in err, err


@pytest.mark.parametrize(
    "flag", ["--catalog", "--workload-file", "--claims-file", "spec", "--scenario"]
)
def test_file_errors_name_the_path(run, tmp_path, flag):
    d = tmp_path / "adir"
    d.mkdir()
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"# caf\xe9\n")
    unreadable = tmp_path / "secret.toml"
    unreadable.write_text("[sources]\n")
    unreadable.chmod(0)
    long = str(tmp_path / ("x" * 300 + ".toml"))
    base = {
        "--catalog": ["chips", "--catalog"],
        "--workload-file": ["train", "--chip", "h100", "--chips", "8", "--workload-file"],
        "--claims-file": ["claims", "--claims-file"],
        "spec": ["sweep", "--out", str(tmp_path / "o")],
        "--scenario": ["plan", "--scenario"],
    }[flag]
    cases = [(d, "is a directory"), (latin1, "not UTF-8"), (long, "file name too long")]
    cases += [(tmp_path / "missing.toml", "")]
    if os.geteuid() != 0:  # root reads anything
        cases.append((unreadable, "permission denied"))
    for path, what in cases:
        rc, _, err = run([*base, str(path)])
        assert rc == 2 and str(path)[:60] in err and what in err, (path, err)


def test_json_is_strict_and_alone_on_stdout(run):
    rc, out, _ = run(["chips", "--json"])
    assert rc == 0
    d = json.loads(out)
    fig = d["chips"][0]["figures"]["bf16_flops_per_s"]
    assert {"unit", "best", "confidence", "source"} <= set(fig)


def test_a_json_command_that_prints_nan_is_a_bug_not_invalid_json(capfd, monkeypatch):
    from perfmodel.commands import catalog

    monkeypatch.setattr(catalog, "chips_rows", lambda cat, pick: [{"x": float("nan")}])
    with pytest.raises(RuntimeError, match="not one strict JSON document|other than one strict"):
        cli.main(["chips", "--json"])
    assert capfd.readouterr().out == ""


def test_c_level_stdout_goes_to_stderr_under_json(capfd, monkeypatch):
    """What a C library prints on file descriptor 1 (the HiGHS banner) lands on stderr."""
    from perfmodel.commands import catalog

    real = catalog.chips_rows

    def noisy(cat, pick):
        os.write(1, b"Running HiGHS 1.x: banner\n")
        return real(cat, pick)

    monkeypatch.setattr(catalog, "chips_rows", noisy)
    assert cli.main(["chips", "--json"]) == 0
    out, err = capfd.readouterr()
    json.loads(out)
    assert "banner" in err and "banner" not in out


@pytest.mark.parametrize(
    "args, first",
    [
        ("chips --json", "{"),
        ("chips", "chip "),
        pytest.param("plan", "", marks=pytest.mark.slow),  # the built-in scenario: ~20 s
    ],
)
def test_closed_pipe_ends_quietly(tmp_path, args, first):
    """``perfmodel ARGS | head -1``: the first line, then a quiet end (exit 0, or 141 as
    after SIGPIPE), never a BrokenPipeError traceback."""
    import subprocess

    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.run(
        f"{sys.executable} -c '{code}' {args} | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=600,
    )
    assert p.returncode in (0, cli.EXIT_BROKEN_PIPE), (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr[-2000:]
    assert len(p.stdout.splitlines()) == 1 and p.stdout.startswith(first), p.stdout


def test_user_catalog_cannot_override_or_escape(run, tmp_path):
    ov = tmp_path / "ov.toml"
    ov.write_text('[aliases]\nh100 = "b200"\n')
    rc, _, err = run(["chip", "h100", "--catalog", str(ov)])
    assert rc == 2 and "replaces built-in aliases.h100" in err and "--allow-override" in err
    rc, out, _ = run(["chip", "h100", "--catalog", str(ov), "--allow-override", "--json"])
    assert rc == 0 and json.loads(out)["key"] == "b200"
    evil = tmp_path / "evil.toml"
    evil.write_text(
        '[sources]\ns = "x"\n[chips."../../../elsewhere/pwned"]\nname = "e"\n'
        + "".join(
            f'{k} = {{ value = {v}, source = "s", confidence = "reported" }}\n'
            for k, v in (
                ("bf16_flops_per_s", 1e15),
                ("dram_bytes", 8e10),
                ("dram_bytes_per_s", 3e12),
                ("tdp_w", 700),
            )
        )
    )
    for argv in (
        ["chips", "--catalog", str(evil)],
        ["calibrate", "--chip", "../../../elsewhere/pwned", "--catalog", str(evil)],
    ):
        rc, _, err = run(argv)
        assert rc == 2 and "'../../../elsewhere/pwned' must be lower-case letters" in err
    assert not (tmp_path.parent / "elsewhere").exists()


def test_plot_reports_the_file_it_wrote(run, tmp_path):
    rc, out, _ = run(["roofline", "--chip", "h100", "--plot", str(tmp_path)])
    written = tmp_path / "roofline_h100_sxm.png"
    assert rc == 0 and f"plot:         {written}" in out and written.stat().st_size > 1000
    rc, out, _ = run(["roofline", "--chip", "h100", "--plot", str(tmp_path / "r")])
    assert rc == 0 and str(tmp_path / "r.png") in out and (tmp_path / "r.png").exists()


# --------------------------------------------------------------------------------------
# nothing written outside the output and cache directories
# --------------------------------------------------------------------------------------


#: A training job small enough to search in seconds.
TINY_TRAIN = ["--layers", "2", "--hidden", "256", "--heads", "4", "--seq", "256", "--vocab", "1024"]
TINY_TRAIN += ["--chip", "h100", "--chips", "8"]


@pytest.mark.slow
def test_no_file_is_written_outside_the_output_and_cache_dirs(run, tmp_path, monkeypatch):
    """Every file opened for writing, created, renamed or removed by the commands (seen by a
    Python audit hook) lies in the output directory or a cache directory."""
    import jax
    import matplotlib

    out, cwd = tmp_path / "out", tmp_path / "cwd"
    out.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    spec = out / "toy.toml"
    spec.write_text('[sweep]\nmodel = "toy"\nsamples = 8\nchunk_size = 4\n')
    allowed = [out.resolve(), Path(matplotlib.get_cachedir()).resolve()]
    jax_cache = jax.config.values["jax_compilation_cache_dir"]
    if jax_cache:
        allowed.append(Path(jax_cache).resolve().parent)  # $PERFMODEL_CACHE_DIR
    allowed.append(Path(os.environ.get("PERFMODEL_CACHE_DIR", "~/.cache/perfmodel")).expanduser())
    writes: list[str] = []
    recording = [True]

    def hook(event, args):
        if not recording[0]:
            return
        if event == "open" and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1] or "r", args[2] or 0
            if any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR):
                writes.append(os.fspath(args[0]))
        elif event in ("os.rename", "os.replace", "os.remove", "os.mkdir", "os.rmdir"):
            writes.extend(os.fspath(a) for a in args[:2] if isinstance(a, (str, os.PathLike)))

    sys.addaudithook(hook)
    try:
        for argv in (
            ["roofline", "--chip", "h100", "--plot", str(out / "roof.png")],
            ["chips", "--json"],
            ["sweep", str(spec), "--out", str(out / "s"), "--plot", str(out / "s.png")],
            ["sweep", str(spec), "--out", str(out / "s"), "--json"],
            ["plan", "--values", "standin", "--plot", str(out / "plan.png")],
            ["net", "h100", "--json"],
            ["net", "h100", "--group", "8", "--plot", str(out)],
            ["equiv", "--chip", "h100", "--count", "8"],
            ["equiv", "--chip", "b200", "--count", "8", "--plot", str(out / "eq.png")],
            ["train", *TINY_TRAIN, "--plot", str(out)],
        ):
            rc, _, _ = run(argv)
            assert rc == 0, argv
    finally:
        recording[0] = False
    assert writes, "the audit hook saw no write: the test would not catch one"
    outside = [w for w in writes if not any(Path(w).resolve().is_relative_to(a) for a in allowed)]
    assert outside == [], outside
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(
    "src, user_error",
    [
        ("raise ValueError('x = 5 must be < 3')", True),
        ("raise KeyError('unknown workload') from None", True),
        ("int('x')", False),  # a builtin that failed inside perfmodel: a bug
        ("{}['k']", False),
        ("import numpy as np; np.zeros(3).reshape(2)", False),  # raised inside NumPy
    ],
)
def test_only_perfmodel_raise_statements_count_as_legacy_user_errors(src, user_error):
    code = compile(src, str(cli._PACKAGE_DIR / "_fake_module.py"), "exec")
    with pytest.raises((ValueError, KeyError)) as e:
        exec(code, {})
    assert cli._legacy_user_error(e.value) is user_error


def test_roofline_all_chips_at_a_precision_some_lack(run):
    """Found by the fuzzer: chips without an fp4 rate divided by a zero peak."""
    rc, out, _ = run(["roofline", "--chip", "all", "--precision", "fp4", "--json"])
    d = json.loads(out)
    assert rc == 0 and "h100_sxm" in d["unsupported_chips"]
    assert {r["chip"] for r in d["chips"]} >= {"b200", "gb200"}
    assert all(r["fraction_of_peak"] > 0 for r in d["chips"])


ROOT = Path(__file__).resolve().parents[1]
#: Directories a test run itself writes to (bytecode, tool caches, the environment).
NOT_SOURCES = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache"}


def repo_files(root: Path = ROOT) -> set[str]:
    """The repository's files (paths relative to ``root``), without tool caches."""
    out = set()
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in NOT_SOURCES and not d.endswith(".egg-info")]
        out.update(os.path.relpath(os.path.join(here, f), root) for f in files)
    return out


@pytest.mark.slow
def test_commands_leave_the_repository_cwd_and_home_alone(tmp_path):
    """A fresh process with HOME and the working directory in temporary directories runs
    commands that write charts: the charts are in the directory given, HOME holds only
    caches, the working directory stays empty and the repository gains no file."""
    import subprocess

    home, cwd, out = tmp_path / "home", tmp_path / "cwd", tmp_path / "out"
    for d in (home, cwd, out):
        d.mkdir()
    argvs = [
        ["chips", "--json"],
        ["roofline", "--chip", "h100", "--plot", str(out)],
        ["net", "h100", "--group", "8", "--plot", str(out)],
        ["equiv", "--chip", "b200", "--count", "8", "--plot", str(out)],
        ["train", *TINY_TRAIN, "--plot", str(out)],
    ]
    code = (
        "import json, sys; from perfmodel.cli import main; "
        "sys.exit(max(main(a) for a in json.loads(sys.argv[1])))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERFMODEL_", "MPL"))}
    env.update(HOME=str(home), JAX_PLATFORMS="cpu", PYTHONDONTWRITEBYTECODE="1")
    before = repo_files()
    p = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argvs)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(f.name for f in out.iterdir()) == [
        "equiv_spec_b200_bf16.png",
        "net_h100.png",
        "roofline_h100_sxm.png",
        "train_custom_h100_8.png",
    ]
    assert list(cwd.iterdir()) == []
    in_home = [f.relative_to(home) for f in home.rglob("*") if f.is_file()]
    assert all(f.parts[0] in (".cache", ".config") for f in in_home), in_home
    assert repo_files() - before == set()
