"""The shipped serving data: benchmark request lengths and latency limits
(``perfmodel/data/serving_datasets.toml``) and the published MLPerf Inference results
(``perfmodel/data/mlperf_inference.toml``, a copy of the calibration file with its
sources in its header)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from perfmodel.choices import SERVING_SCENARIOS
from perfmodel.errors import InputError
from perfmodel.hardware import read_toml
from perfmodel.serving.types import NO_LIMIT_S, Requests, _f

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATASETS_FILE = DATA_DIR / "serving_datasets.toml"
MLPERF_FILE = DATA_DIR / "mlperf_inference.toml"
LOGS_FILE = DATA_DIR / "mlperf_v51_logs.toml"

#: Scenarios as MLPerf names them (``perfmodel serve --scenario``).
SCENARIOS = SERVING_SCENARIOS

#: Accelerator families of the results file that the catalog models, by the chip
#: variant it describes (SXM modules; PCIe / NVL cards differ in power and memory).
CHIP_OF_FAMILY = {
    "H100": "h100_sxm",
    "H200": "h200",
    "B200": "b200",
    "MI300X": "mi300x",
    "MI325X": "mi325x",
}


@functools.cache
def _datasets() -> dict[str, Any]:
    return read_toml(DATASETS_FILE, "serving datasets")


def benchmark_names() -> tuple[str, ...]:
    return tuple(_datasets()["datasets"])


def dataset(benchmark: str) -> dict[str, Any]:
    """Length statistics of a benchmark's dataset (tokens), with sources."""
    d = _datasets()["datasets"]
    if benchmark not in d:
        raise KeyError(f"no dataset statistics for '{benchmark}'; known: {', '.join(d)}")
    return dict(d[benchmark])


def defined_scenarios(benchmark: str) -> tuple[str, ...]:
    """The scenarios with limits for ``benchmark`` (the default limits for a workload
    that is not a benchmark), in :data:`SCENARIOS` order; Offline always."""
    table = _datasets()["limits"]
    lim = table.get(benchmark, table["default"])
    keys = set(lim)
    return ("offline",) + tuple(
        s for s in SCENARIOS[1:] if any(f"{s}_{k}_ms" in keys for k in ("ttft", "tpot", "latency"))
    )


def limits(benchmark: str, scenario: str) -> dict[str, float]:
    """p99 limits (s) of ``scenario`` for ``benchmark`` (the default limits for a
    workload that is not a benchmark); Offline has none."""
    if scenario not in SCENARIOS:
        raise InputError(f"scenario = {scenario!r} must be one of {', '.join(SCENARIOS)}")
    table = _datasets()["limits"]
    lim = table.get(benchmark, table["default"])
    out = {"ttft_limit_s": NO_LIMIT_S, "tpot_limit_s": NO_LIMIT_S, "latency_limit_s": NO_LIMIT_S}
    if scenario == "offline":
        return out
    if scenario not in defined_scenarios(benchmark):
        raise InputError(
            f"scenario = {scenario!r} is not defined for '{benchmark}'; it has "
            f"{sorted({k.split('_')[0] for k in lim if k.endswith('_ms')} | {'offline'})}"
        )
    for k in ("ttft", "tpot", "latency"):
        v = lim.get(f"{scenario}_{k}_ms")
        if v is not None:
            out[f"{k}_limit_s"] = float(v) / 1e3
    return out


def make_requests(
    benchmark: str,
    *,
    ttft_limit_s: float = NO_LIMIT_S,
    tpot_limit_s: float = NO_LIMIT_S,
    latency_limit_s: float = NO_LIMIT_S,
    kv_bytes: float = 1.0,
    input_mean: float | None = None,
    output_mean: float | None = None,
    scheduler_steps: float = 1.0,
) -> Requests:
    """A :class:`Requests` pytree from a benchmark's dataset statistics and limits
    (``scheduler_steps``: the engine's iterations per scheduling decision)."""
    d = dataset(benchmark)
    i_mean = float(d["input_mean"] if input_mean is None else input_mean)
    o_mean = float(d["output_mean"] if output_mean is None else output_mean)
    return Requests(
        input_mean=_f(i_mean),
        input_p99=_f(max(float(d["input_p99"]), i_mean)),
        output_mean=_f(o_mean),
        output_p99=_f(max(float(d["output_p99"]), o_mean)),
        ttft_limit_s=_f(ttft_limit_s),
        tpot_limit_s=_f(tpot_limit_s),
        latency_limit_s=_f(latency_limit_s),
        kv_bytes=_f(kv_bytes),
        beams=_f(float(d.get("beams", 1))),
        shared_prompt_read=_f(1.0),
        scheduler_steps=_f(scheduler_steps),
    )


def round_years(round_name: str) -> float:
    """Years from MLPerf Inference v4.0 to the publication of ``round_name`` (the
    ``[rounds]`` table of the datasets file)."""
    rounds = _rounds()
    if round_name not in rounds:
        raise KeyError(f"no publication date for round '{round_name}'; known: {', '.join(rounds)}")
    return float(rounds[round_name]["years"])


def _rounds() -> dict[str, Any]:
    return {k: v for k, v in _datasets()["rounds"].items() if isinstance(v, dict)}


def newest_round() -> str:
    """The latest round of the datasets file (the software a prediction assumes)."""
    return max(_rounds(), key=round_years)


#: Engine families the serving fit distinguishes (TensorRT-LLM is the reference).
ENGINES = ("tensorrt-llm", "vllm")


def engine_family(software_engine: str) -> str:
    """The engine family (:data:`ENGINES`) of a result's ``software_engine``."""
    table = {k: v for k, v in _datasets()["engines"].items() if k != "source"}
    if software_engine not in table:
        raise KeyError(f"software_engine '{software_engine}' has no engine family")
    return str(table[software_engine])


def base_benchmark(name: str) -> str:
    """``llama2-70b-99.9`` / ``llama2-70b-interactive-99`` -> ``llama2-70b``;
    ``gptj-99`` -> ``gptj``."""
    for suffix in ("-99.9", "-99"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-interactive", "")


@dataclasses.dataclass(frozen=True)
class MLPerfRow:
    """One published result the serving model is checked on (host-side metadata)."""

    index: int
    round: str
    submitter: str
    system: str
    family: str
    chip: str
    benchmark: str
    scenario: str
    n_chips: int
    chips_per_node: int
    tokens_per_s: float
    ttft_limit_s: float
    tpot_limit_s: float
    latency_limit_s: float
    precision: str
    software: str
    source: str
    engine: str = "tensorrt-llm"
    years: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.round}/{self.submitter}/{self.system}/{self.benchmark}/{self.scenario}"


def _lim(v: float) -> float:
    return float(v) / 1e3 if v and v > 0 else NO_LIMIT_S


def gemm_precision(family: str) -> str:
    """The GEMM precision the submitters ran (convention of this fit, from the
    results' notes): NVFP4 on Blackwell (B200 rows print ``fp4``, or ``fp16`` with a
    quantisation transformation, or nothing in v5.0), FP8 on Hopper and MI300X
    (``fp8``, or ``fp16`` weights quantised to FP8 by TensorRT-LLM)."""
    return "fp4" if family == "B200" else "fp8"


def load_mlperf_rows(path: str | Path = MLPERF_FILE) -> tuple[list[MLPerfRow], dict[str, int]]:
    """The rows the serving model can be checked on, and the count of rows left out by
    reason: accelerator not in the catalog (or a PCIe/NVL card), no accelerator count,
    no tokens/s, a benchmark without dataset statistics."""
    data = read_toml(Path(path), "MLPerf inference results")
    rows: list[MLPerfRow] = []
    skipped: dict[str, int] = {}

    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    known = set(benchmark_names())
    for i, r in enumerate(data["result"]):
        fam = r["accelerator_family"]
        if fam not in CHIP_OF_FAMILY:
            skip(f"accelerator family {fam} not in the catalog")
            continue
        if fam in ("H100", "H200", "B200") and "SXM" not in r["accelerator"]:
            skip("PCIe / NVL card (the catalog models the SXM module)")
            continue
        if "maxq" in r["system_id"].lower():
            skip("power-capped MaxQ submission (the catalog chip runs at its TDP)")
            continue
        n, per = int(r["total_accelerators"]), int(r["accelerators_per_node"])
        if n < 1 or per < 1:
            skip("accelerator count not printed")
            continue
        tok = float(r["tokens_per_second"])
        if tok <= 0:
            skip("no tokens/s")
            continue
        bench = base_benchmark(r["benchmark"])
        if bench not in known:
            skip(f"benchmark {bench} without dataset statistics")
            continue
        try:
            engine = engine_family(r["software_engine"])
        except KeyError:
            skip("software engine not stated")
            continue
        rows.append(
            MLPerfRow(
                index=i,
                round=r["round"],
                submitter=r["submitter"],
                system=r["system_id"],
                family=fam,
                chip=CHIP_OF_FAMILY[fam],
                benchmark=bench,
                scenario=r["scenario_normalized"],
                n_chips=n,
                chips_per_node=per,
                tokens_per_s=tok,
                ttft_limit_s=_lim(r["ttft_limit_ms"]),
                tpot_limit_s=_lim(r["tpot_limit_ms"]),
                latency_limit_s=_lim(r["latency_limit_ms"]),
                precision=gemm_precision(fam),
                software=r["software_engine"],
                source=f"{r['source_repo']}@{r['source_commit']}:{r['source_path']}",
                engine=engine,
                years=round_years(r["round"]),
            )
        )
    return rows, skipped


def requests_of(
    row: MLPerfRow, input_mean: float | None = None, scheduler_steps: float = 1.0
) -> Requests:
    """The :class:`Requests` of a published row (its own printed limits; FP8 KV cache,
    which every submitter in the file used on these chips); ``input_mean`` replaces
    the dataset's mean prompt length (for before/after checks of a dataset figure);
    ``scheduler_steps``: the engine's published setting (1: every iteration)."""
    return make_requests(
        row.benchmark,
        ttft_limit_s=row.ttft_limit_s,
        tpot_limit_s=row.tpot_limit_s,
        latency_limit_s=row.latency_limit_s,
        kv_bytes=1.0,
        input_mean=input_mean,
        scheduler_steps=scheduler_steps,
    )


@dataclasses.dataclass(frozen=True)
class LogPair:
    """A published run's (decode batch, TPOT) operating point, for the row ``row`` of
    the rows it was matched to (``mlperf_v51_logs.toml``; per GPU, tensor parallel
    ``tp``).

    Attributes:
      row: index into the row list it was matched against.
      decoding_per_gpu: sequences past their first token per GPU (derived, Little's law).
      mean_tpot_s, p99_tpot_s: the log's mean and p99 time per output token (s).
      tp: the engine's tensor-parallel degree.
      scheduler_steps: the engine's decode iterations per scheduling decision.
    """

    row: int
    decoding_per_gpu: float
    mean_tpot_s: float
    p99_tpot_s: float
    tp: int
    scheduler_steps: float = 1.0


_LOG_FIELDS = (
    "source_path",
    "decoding_per_gpu",
    "mean_tpot_ms",
    "p99_tpot_ms",
    "tensor_parallel",
    "scheduler_steps",
)


def load_log_pairs(rows: list[MLPerfRow], path: str | Path = LOGS_FILE) -> list[LogPair]:
    """The (decode batch per GPU, TPOT) pairs of the published v5.1 logs of ``rows``
    (matched by the row's source path; rows without a log, e.g. Offline or earlier
    rounds, have none; logs of systems without accelerators are skipped). A log
    record missing a field, or with a non-positive batch or
    TPOT, is an :class:`InputError` naming the field."""
    data = read_toml(Path(path), "MLPerf v5.1 logs")
    by_path: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(data.get("log", [])):
        if int(rec.get("accelerators", 1)) < 1:
            continue
        for k in _LOG_FIELDS:
            if k not in rec:
                raise InputError(f"{Path(path).name}: log {i} has no field '{k}'")
        for k in _LOG_FIELDS[1:]:
            if not float(rec[k]) > 0:
                raise InputError(f"log[{i}].{k}", rec[k], "a positive number")
        by_path[str(rec["source_path"])] = rec
    pairs = []
    for i, r in enumerate(rows):
        if r.round != "v5.1" or r.scenario == "Offline":
            continue
        rec = by_path.get(r.source.rpartition(":")[2])
        if rec is None:
            continue
        pairs.append(
            LogPair(
                row=i,
                decoding_per_gpu=float(rec["decoding_per_gpu"]),
                mean_tpot_s=float(rec["mean_tpot_ms"]) / 1e3,
                p99_tpot_s=float(rec["p99_tpot_ms"]) / 1e3,
                tp=int(rec["tensor_parallel"]),
                scheduler_steps=float(rec["scheduler_steps"]),
            )
        )
    return pairs
