"""The GB200 inference claims checked with the serving model: the FP4 capacity by hand,
and a synthetic recovery of the serving fit (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel import claims as cl
from perfmodel.serving import fit as F
from perfmodel.serving.data import load_mlperf_rows
from perfmodel.serving.types import default_efficiency


def _claim(cid: str) -> cl.Claim:
    return next(c for c in cl.load_claims() if c.id == cid)


def test_27t_parameters_is_hbm_at_4_bit_by_hand():
    r = cl.evaluate_claims([_claim("gb200-nvl72-27t-params")])[0]
    # 72 GPUs x 198.67 GB HBM3e (catalog: nvidia-smi's 189,471 MiB) / 0.5 byte per FP4
    # parameter
    hbm = 198.67e9
    assert r.numbers["params_weights_only[fp4]"]["best"] == pytest.approx(72 * hbm / 0.5)
    usable = float(default_efficiency().mem_usable)
    assert r.numbers["params_usable_with_scales"]["best"] == pytest.approx(
        72 * hbm * usable / (0.5 + 0.0625)
    )
    assert r.verdict == "consistent"  # 27T vs 28.6T: the weights-only reading
    assert "28.6T" in r.summary


def test_serving_claims_are_built_in_with_sources():
    ids = {c.id: c for c in cl.load_claims()}
    for cid in ("gb200-nvl72-27t-params", "gb200-nvl72-30x-h100-moe-inference"):
        assert cid in ids and ids[cid].sources and ids[cid].check in cl.EVALUATORS


@pytest.mark.slow
def test_fit_recovers_synthetic_parameters():
    # rows of one compiled group (llama2-70b FP8 on H200): publish the model's own
    # predictions at known parameters, fit from the prior, predict them back
    rows = [r for r in load_mlperf_rows()[0] if r.chip == "h200" and r.benchmark == "llama2-70b"]
    prob = F.Problem(rows[:40])
    truth = F.prior_vector() * 1.0
    truth[F.ALL_PARAMS.index("matmul")] = 0.55
    truth[F.ALL_PARAMS.index("tpot_p99")] = 1.6
    prob.measured = prob.predict(truth)
    theta = F.fit(prob, max_nfev=40)
    err = F.errors(prob.predict(theta), prob.measured)
    assert np.max(np.abs(err)) < 0.02
