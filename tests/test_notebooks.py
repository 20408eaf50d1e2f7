"""Every notebook in notebooks/ runs top to bottom in a fresh kernel (small sizes), and
its paired plain-text source (jupytext percent format) matches the .ipynb."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def _repo_files() -> set[str]:
    skip = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache"}
    out = set()
    for here, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        out.update(os.path.relpath(os.path.join(here, f), ROOT) for f in files)
    return out


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.slow
def test_notebook_runs(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """... and writes its files only to ``$PERFMODEL_OUT_DIR`` (never next to the
    sources, nor to its working directory)."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
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
    # a last cell reports the kernel's environment: it must be this interpreter's (so the
    # notebooks run against the perfmodel under test, not another installation's kernel)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    env_dir = tmp_path / "run"
    env_dir.mkdir()
    out_dir = tmp_path / "out"
    monkeypatch.setenv("PERFMODEL_OUT_DIR", str(out_dir))  # the kernel inherits it
    os.environ.setdefault("PERFMODEL_NOTEBOOK_SMALL", "1")
    before = _repo_files()
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(env_dir)}}
    )
    client.execute()
    probe = nb.cells[-1].outputs
    printed = "".join(o.get("text", "") for o in probe if o.get("output_type") == "stream")
    assert printed.strip() == sys.prefix, (
        f"the kernel ran in {printed.strip()!r}, not {sys.prefix!r}"
    )
    assert list(env_dir.iterdir()) == [], "the notebook wrote to its working directory"
    assert _repo_files() - before == set(), "the notebook wrote into the repository"
    assert any(out_dir.rglob("*.png")), f"no chart in $PERFMODEL_OUT_DIR ({out_dir})"
