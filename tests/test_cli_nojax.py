"""The catalog commands and every command's help run without JAX; every other path still
gets JAX configured by perfmodel (64-bit floats, the compile cache) before its first use."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

import perfmodel
from perfmodel import cli

NO_JAX = """
import sys
import perfmodel.cli
try:
    rc = perfmodel.cli.main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
assert rc == 0, rc
heavy = sorted(m for m in ("jax", "jaxlib", "flax", "numpy", "scipy", "matplotlib") if m in sys.modules)
assert not heavy, heavy
"""


def _python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["chips"],
        ["chips", "--json", "--pick", "low"],
        ["chip", "h100"],
        ["systems", "--json"],
        ["--help"],
        *([name, "--help"] for name in cli.COMMANDS),  # every command's help, new ones too
    ],
    ids=" ".join,
)
def test_catalog_commands_and_help_import_no_jax(argv):
    p = _python(NO_JAX, *argv)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip()


@pytest.fixture(scope="module")
def full_parser_helps() -> dict[str, str]:
    """Each command's help as the full parser (every module registered) prints it, 80
    columns wide."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "80")
        parser = cli.build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {name: p.format_help() for name, p in sub.choices.items()}


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_a_commands_help_is_the_full_parsers(name, full_parser_helps):
    """`perfmodel CMD --help` (a new process: CMD's module alone, its model not loaded)
    prints what the full parser does: the choices and defaults it lists are the model's."""
    env = {**os.environ, "COLUMNS": "80", "PERFMODEL_RESULT_CACHE": "0"}
    p = _python(
        "import sys, perfmodel.cli; sys.exit(perfmodel.cli.main())", name, "--help", env=env
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == full_parser_helps[name]
    assert p.stdout.startswith(f"usage: perfmodel {name} ")


def test_unknown_command_lists_every_command_without_jax():
    code = NO_JAX.replace("assert rc == 0, rc", "assert rc == 2, rc")
    p = _python(code, "chps")
    assert p.returncode == 0, p.stderr
    for name in cli.COMMANDS:
        assert f"'{name}'" in p.stderr


def _helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub._choices_actions}


def test_command_table_matches_what_the_modules_register():
    full = cli.build_parser()  # every module registers its own commands
    assert _helps(full) == {name: help_ for name, (_, help_) in cli.COMMANDS.items()}
    assert list(_helps(full)) == list(cli.COMMANDS)  # the help order
    assert _helps(cli.build_parser("")) == _helps(full)  # what `perfmodel --help` lists
    for name, (module, _) in cli.COMMANDS.items():  # each command comes from its module
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        __import__(module, fromlist=["register"]).register(sub)
        assert name in sub.choices, (name, module)


@pytest.mark.parametrize(
    "argv",
    [
        ["chips", "--pick", "low"],
        ["train", "--workload", "gpt3-175b", "--chip", "h100", "--chips", "8"],
    ],
)
def test_a_command_parses_as_in_the_full_parser(argv):
    """`perfmodel CMD` builds CMD's parser from its module alone, the same as in the full one."""
    lazy = vars(cli.build_parser(argv[0]).parse_args(argv))
    full = vars(cli.build_parser().parse_args(argv))
    assert lazy == full and callable(lazy["func"])


X64_AND_CACHE = """
import sys
first = sys.argv[1]
if first == "jax":
    import jax
import perfmodel
import jax, jax.numpy as jnp
assert jax.config.jax_enable_x64
assert jnp.ones(2).dtype == jnp.float64
print(jax.config.values["jax_compilation_cache_dir"])
assert perfmodel.Chip is perfmodel.hardware.Chip
assert callable(perfmodel.hardware.chip)  # the function, not the pytree module
assert float(perfmodel.chip("h100").tdp_w) > 0
"""


@pytest.mark.parametrize("first", ["perfmodel", "jax"])
def test_jax_gets_x64_and_the_compile_cache_whichever_is_imported_first(first, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "PERFMODEL_"))}
    env["PERFMODEL_CACHE_DIR"] = str(tmp_path)
    p = _python(X64_AND_CACHE, first, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(tmp_path / "jax")


def test_a_child_process_uses_its_own_cache_dir(tmp_path):
    """A cache directory inherited from a perfmodel parent is not the user's: the child
    recomputes its own from its PERFMODEL_CACHE_DIR (or turns it off)."""
    env = dict(os.environ)
    env.update(
        JAX_COMPILATION_CACHE_DIR="/parent/jax",
        PERFMODEL_JAX_CACHE_DIR_SET="/parent/jax",
        PERFMODEL_CACHE_DIR=str(tmp_path),
    )
    p = _python(X64_AND_CACHE, "perfmodel", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(tmp_path / "jax")
    env["PERFMODEL_JAX_CACHE"] = "0"
    p = _python(X64_AND_CACHE, "perfmodel", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() in ("", "None")


def test_a_cache_dir_the_user_set_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.delenv("PERFMODEL_JAX_CACHE_DIR_SET", raising=False)
    assert perfmodel._compile_cache_dir() is None
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("PERFMODEL_CACHE_DIR", str(tmp_path))
    assert perfmodel._compile_cache_dir() == str(tmp_path / "jax")


def test_serving_reads_its_fit_without_scipy_optimize():
    """`serve` and the planner read the fitted serving parameters; only a refit imports
    scipy.optimize (0.3-0.4 s)."""
    code = (
        "import sys\n"
        "from perfmodel.serving import serve\n"
        "assert serve('llama2-70b', 'h100', 8, 'offline')['tokens_per_s'] > 0\n"
        "assert 'scipy.optimize' not in sys.modules\n"
    )
    p = _python(code)
    assert p.returncode == 0, p.stderr


def test_the_models_check_against_the_lists_the_parsers_offer():
    """One home: each model module's list is :mod:`perfmodel.choices`' own object."""
    from perfmodel import calibrate, choices, equivalence, interconnect, serving, training
    from perfmodel import workloads as wl
    from perfmodel.sweep import spec

    assert interconnect.KINDS is choices.COLLECTIVE_KINDS
    assert training.INFERENCE_MODES is choices.INFERENCE_MODES
    assert wl.TRAIN_PRECISIONS is choices.TRAIN_PRECISIONS
    assert wl.WORKLOAD_NAMES == choices.workload_names()
    assert serving.SCENARIOS is choices.SERVING_SCENARIOS
    assert equivalence.INFERENCE_MODELS is choices.INFERENCE_MODELS
    assert calibrate.STATS is choices.CALIBRATION_STATS
    assert calibrate.DEFAULT_HOST_KEY is choices.DEFAULT_HOST_KEY
    assert calibrate.DEFAULT_HOST_CATALOG is choices.DEFAULT_HOST_CATALOG
    assert spec.builtin_spec_paths is choices.builtin_spec_paths
