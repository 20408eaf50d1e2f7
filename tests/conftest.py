"""Test configuration: x64 on, strict rank promotion, a deterministic hypothesis profile."""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _forget_caches() -> None:
    # imported here: the planner stack loads only for the tests that ask for the fixture
    from perfmodel import model_cache
    from perfmodel.equivalence import clear_cache
    from perfmodel.fleet import curves, values

    model_cache._disk.cache_clear()
    clear_cache()
    curves._curve_by_name.cache_clear()
    values.chip_rate.cache_clear()


@pytest.fixture
def fresh_caches(tmp_path, monkeypatch):
    """An empty cache directory (``$PERFMODEL_CACHE_DIR``, yielded) and every in-process
    curve and rate cache forgotten, before the test and after it: what a new process
    with a cold cache sees."""
    monkeypatch.setenv("PERFMODEL_CACHE_DIR", str(tmp_path / "cache"))
    _forget_caches()
    yield tmp_path / "cache"
    _forget_caches()
