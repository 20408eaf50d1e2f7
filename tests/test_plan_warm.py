"""A warm ``perfmodel plan`` (its value readings cached by a first run) runs no JAX
program and loads neither the charts nor the batch solvers; its plan is the cold one's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PLAN = """
import json, sys
import perfmodel.cli
rc = perfmodel.cli.main(sys.argv[1:])
assert rc == 0, rc
loaded = ("matplotlib", "scipy.optimize", "perfmodel.plots", "perfmodel.fleet.pdhg",
          "perfmodel.fleet.simplex", "perfmodel.fleet.testing")
print(json.dumps(sorted(m for m in loaded if m in sys.modules)), file=sys.stderr)
"""


def _plan(env: dict[str, str]) -> tuple[dict, str]:
    p = subprocess.run(
        [sys.executable, "-c", PLAN, "plan", "--json", "--verbose"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p.stderr


def _without_seconds(d):
    if isinstance(d, dict):
        return {k: _without_seconds(v) for k, v in d.items() if "seconds" not in k}
    if isinstance(d, list):
        return [_without_seconds(v) for v in d]
    return d


def test_warm_plan_runs_no_jax_program(tmp_path):
    env = dict(os.environ, PERFMODEL_CACHE_DIR=str(tmp_path / "cache"))
    cold, _ = _plan(env)
    warm, err = _plan(env)
    assert _without_seconds(warm) == _without_seconds(cold)
    assert "(0 programs;" in err, err  # --verbose: nothing traced, lowered or compiled
    assert err.strip().splitlines()[-1] == "[]", err
