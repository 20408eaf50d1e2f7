"""Every notebook in notebooks/ runs top to bottom in a fresh kernel (small sizes), and
its paired plain-text source (jupytext percent format) matches the .ipynb."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(source: Path, tmp_path: Path):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    nb = jupytext.read(source)
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run `jupytext --sync {source}`"
    twin = jupytext.read(paired)
    assert [c.source for c in nb.cells] == [c.source for c in twin.cells], (
        f"{paired.name} is out of sync with {source.name}: run `jupytext --sync {source}`"
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    env_dir = tmp_path / "run"
    env_dir.mkdir()
    os.environ.setdefault("PERFMODEL_NOTEBOOK_SMALL", "1")
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(env_dir)}}
    )
    client.execute()
    assert sys.executable  # the kernel ran in this interpreter's environment
