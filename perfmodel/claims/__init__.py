"""Public claims about H100-equivalents, evaluated with the model.

A claim (``perfmodel/data/claims.toml``, or a user file of the same form) has an id, a
date, a speaker, a quote, sources, a ``check`` (the name of an evaluator below) and
``params``. :func:`evaluate_claims` returns one :class:`ClaimResult` per claim with the
model's numbers, a verdict and the assumptions behind it; ``perfmodel claims`` prints
them as a table or JSON.

Verdicts compare the claimed figure with the model's low..high range, widened by a 10%
tolerance (``TOL``): ``consistent`` inside it, ``overstated`` above, ``understated``
below; claims that are not a single number get a descriptive verdict (``fits``,
``does not fit``, ``plausible``, ...).

Workload numbers need the training model (:mod:`perfmodel.training`); if it is missing
or fails, those numbers are reported as ``None`` with the reason, and the verdict rests
on the spec-sheet and price/power numbers.

Modules (each imports only those below it; an import-linter contract checks it):

* :mod:`~perfmodel.claims.evaluate`: :func:`evaluate_claims`, :func:`claims_table`;
* :mod:`~perfmodel.claims.files`: built-in and user claim files;
* :mod:`~perfmodel.claims.checks`: the registry of evaluators (:data:`EVALUATORS`);
* :mod:`~perfmodel.claims.fleets`, :mod:`~perfmodel.claims.sites`,
  :mod:`~perfmodel.claims.chips`: the evaluators, by what a claim is about;
* :mod:`~perfmodel.claims.context`: the evaluation :class:`Context` and helpers;
* :mod:`~perfmodel.claims.verdicts`: :class:`Claim`, :class:`ClaimResult`, verdicts.
"""

from perfmodel.claims.checks import EVALUATORS as EVALUATORS
from perfmodel.claims.chips import check_fp4_capacity as check_fp4_capacity
from perfmodel.claims.chips import check_serving_speedup as check_serving_speedup
from perfmodel.claims.chips import check_speedup as check_speedup
from perfmodel.claims.context import Context as Context
from perfmodel.claims.evaluate import claims_table as claims_table
from perfmodel.claims.evaluate import evaluate_claims as evaluate_claims
from perfmodel.claims.files import builtin_claims_path as builtin_claims_path
from perfmodel.claims.files import builtin_claims_paths as builtin_claims_paths
from perfmodel.claims.files import load_claims as load_claims
from perfmodel.claims.files import parse_claims as parse_claims
from perfmodel.claims.fleets import check_budget_h100e as check_budget_h100e
from perfmodel.claims.fleets import check_dojo_h100e as check_dojo_h100e
from perfmodel.claims.fleets import check_fleet_h100e as check_fleet_h100e
from perfmodel.claims.fleets import check_growth as check_growth
from perfmodel.claims.sites import check_cortex_power as check_cortex_power
from perfmodel.claims.sites import check_diversion as check_diversion
from perfmodel.claims.sites import check_inference_in_loop as check_inference_in_loop
from perfmodel.claims.verdicts import TOL as TOL
from perfmodel.claims.verdicts import VERDICTS as VERDICTS
from perfmodel.claims.verdicts import Claim as Claim
from perfmodel.claims.verdicts import ClaimResult as ClaimResult
from perfmodel.claims.verdicts import compare as compare

__all__ = [
    "Claim",
    "ClaimResult",
    "Context",
    "EVALUATORS",
    "TOL",
    "VERDICTS",
    "builtin_claims_path",
    "builtin_claims_paths",
    "check_budget_h100e",
    "check_cortex_power",
    "check_diversion",
    "check_dojo_h100e",
    "check_fleet_h100e",
    "check_fp4_capacity",
    "check_growth",
    "check_inference_in_loop",
    "check_serving_speedup",
    "check_speedup",
    "claims_table",
    "compare",
    "evaluate_claims",
    "load_claims",
    "parse_claims",
]
