"""Issue 16's robustness bars, measured by a fresh fuzzing campaign (new seeds).

(a) fuzzed CLI invocations of every sub-command, run in this process through
    ``perfmodel.cli.main(argv)`` with stdout/stderr captured at the file-descriptor level;
(b) mutated scenarios derived from ``tesla-2024.toml`` through ``plan --json --heuristic``,
    every exit-0 plan re-checked by the independent checker (perfmodel/fleet/check.py)
    and by a raw supply bound computed here from the TOML (events never create supply);
(c) ``plan`` on a 120-site x 8-offer x 40-quarter generated scenario in a subprocess:
    solves within 4 GB peak RSS or refuses within 5 s with one clear line.

    python benchmarks/robustness_campaign.py [--quick] [--seed N]

Writes benchmarks/results/robustness_campaign.json and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "robustness_campaign.json"
SCENARIO = ROOT / "perfmodel" / "data" / "scenarios" / "tesla-2024.toml"

#: how Python prints a non-finite float in text (as tests/test_cli_fuzz.py)
NONFINITE = re.compile(r"(?<![\w.])[-+]?(nan|inf)(?![\w])")

#: the HiGHS banner (stderr under --json), not part of an error message
BANNER = re.compile(r"^(Running HiGHS |Includes third-party software)")

NUMBERS = [
    "1",
    "8",
    "64",
    "4096",
    "0",
    "-3",
    "-0",
    "2.5",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "x",
    "",
    "  ",
    "1_000",
    "0x10",
    "١٢",
    "9" * 400,
]
NAMES = [
    "h100",
    "b200",
    "dojo",
    "gb200",
    "all",
    "",
    "../../etc/passwd",
    "H100",
    "tpu_v9",
    "h100\x00",
    "ü",
    "a" * 300,
    "/",
    ".",
]
PRECISIONS = ["bf16", "fp8", "fp4", "int8", "fp32", "fp5", "", "BF16"]


@contextlib.contextmanager
def captured():
    """Redirect file descriptors 1 and 2 to temp files; yields a dict filled on exit."""
    res: dict = {}
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        os.dup2(fo.fileno(), 1)
        os.dup2(fe.fileno(), 2)
        try:
            yield res
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            fo.seek(0)
            fe.seek(0)
            res["out"] = fo.read().decode("utf-8", "replace")
            res["err"] = fe.read().decode("utf-8", "replace")


def run_cli(argv: list[str]) -> dict:
    """One in-process invocation: rc (or 'exception'), stdout, stderr, seconds."""
    import traceback

    from perfmodel import cli

    t0 = time.perf_counter()
    exc = None
    with captured() as cap:
        try:
            rc = cli.main(list(argv))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001  (a bug: counted as a traceback)
            rc = "exception"
            exc = traceback.format_exc()
    err = cap["err"] + (exc or "")
    return {"rc": rc, "out": cap["out"], "err": err, "seconds": time.perf_counter() - t0}


def classify(argv: list[str], r: dict) -> list[str]:
    """The contract's failures for one invocation."""
    bad = []
    if "Traceback" in r["err"] or r["rc"] == "exception":
        bad.append("traceback")
    if r["rc"] not in (0, 2):
        bad.append("exit_code")
    if r["rc"] == 2:
        lines = [s for s in r["err"].splitlines() if s.strip() and not BANNER.match(s)]
        if len(lines) != 1:
            bad.append("multiline_error")
    if r["rc"] == 0:
        if "--json" in argv and "--help" not in argv and "-h" not in argv:

            def strict(c):
                raise ValueError(c)

            try:
                json.loads(r["out"], parse_constant=strict)
            except ValueError as e:
                bad.append(
                    "nonfinite" if str(e) in ("NaN", "Infinity", "-Infinity") else "invalid_json"
                )
        elif NONFINITE.search(r["out"]):
            bad.append("nonfinite")
    return bad


# --------------------------------------------------------------------------------------
# (a) generated argv
# --------------------------------------------------------------------------------------


def gen_argv(rng: random.Random, tmp: Path) -> list[str]:
    def opt(flag, values, p=0.5):
        return [flag, rng.choice(values)] if rng.random() < p else []

    def js():
        return ["--json"] if rng.random() < 0.5 else []

    files = [
        str(tmp),
        str(tmp / "missing.toml"),
        str(tmp / "latin1.toml"),
        str(tmp / "garbage.toml"),
        str(tmp / "empty.toml"),
        "x" * 300,
        "",
        "/dev/null",
    ]
    junk = [
        ["--bogus"],
        ["--json", "--json"],
        ["-h"],
        ["--help"],
        ["--"],
        ["ü"],
        ["--pick"],
        ["--pick", "nope"],
        [""],
        [],
    ]
    cmd = rng.choices(
        [
            "chips",
            "chip",
            "systems",
            "roofline",
            "net",
            "equiv",
            "train",
            "plan",
            "compare",
            "serve",
            "claims",
            "sweep",
            "calibrate",
            "help",
            "bogus",
        ],
        weights=[8, 10, 6, 20, 12, 12, 4, 3, 2, 3, 1, 4, 3, 2, 1],
    )[0]
    if cmd == "chips":
        a = [
            "chips",
            *opt("--pick", ["best", "low", "high", "middle", ""]),
            *opt("--catalog", files, 0.2),
            *js(),
        ]
    elif cmd == "chip":
        a = ["chip", rng.choice(NAMES), *opt("--pick", ["best", "low", "x"], 0.3), *js()]
    elif cmd == "systems":
        a = ["systems", *opt("--pick", ["best", "high", "x"], 0.3), *js()]
    elif cmd == "roofline":
        a = [
            "roofline",
            *opt("--chip", NAMES, 0.9),
            *opt(
                "--op",
                ["matmul", "bmm", "attention", "elementwise", "layernorm", "conv2d", "fft", ""],
            ),
            *opt("--precision", PRECISIONS),
            *opt("--dtype", PRECISIONS, 0.2),
        ]
        for f in ("--m", "--n", "--k", "--seq", "--batch", "--heads"):
            a += opt(f, NUMBERS, 0.3)
        a += rng.choice([[], ["--ideal"], ["--causal"]]) + js()
    elif cmd == "net":
        a = [
            "net",
            rng.choice(NAMES),
            *opt("--bytes", ["1e6", "1e6,1e9", "0", "-1", "1e308", "nan", ",", "x", "1e6,,1"]),
            *opt("--group", ["8", "16,64", "0", "3.5", "1e9", "-8", "inf"]),
            *opt("--oversubscription", ["1", "2", "0.5", "inf", "0", "-1", "nan"]),
            *opt("--members-per-domain", ["1", "4", "0", "2.5", "1e9"]),
            *js(),
        ]
    elif cmd == "equiv":
        a = [
            "equiv",
            *opt("--chip", NAMES),
            *opt("--count", NUMBERS),
            *rng.choice(
                [
                    [],
                    ["--kind", "spec"],
                    ["--kind", "price"],
                    ["--kind", "budget"],
                    ["--kind", "power"],
                    ["--kind", "x"],
                ]
            ),
            *opt("--budget-usd", ["1e9", "0", "-5", "1e308", "nan", "inf"]),
            *opt("--power-mw", ["10", "0", "-1", "1e308", "nan"], 0.3),
            *opt("--precision", PRECISIONS),
            *opt("--pue", ["1.3", "0.5", "9", "nan", "0"]),
            *js(),
        ]
    elif cmd == "train":
        tiny = (
            ["--layers", "2", "--hidden", "256", "--heads", "4", "--seq", "256", "--vocab", "1024"]
            if rng.random() < 0.8
            else []
        )
        a = [
            "train",
            "--chip",
            rng.choice(["h100", "b200", "tpu_v9", ""]),
            "--chips",
            rng.choice(["8", "16", "0", "-1", "x", "1e308", "nan"]),
            *tiny,
            *opt("--workload", ["llama3-8b", "", "nope"], 0.2),
            *opt(
                "--layout",
                [
                    "tp=8",
                    "tp=0",
                    "pp=0",
                    "cp=0",
                    "tp=3",
                    "tp=x",
                    "tp=-1",
                    "tp=2,pp=2,dp=2",
                    "zz=1",
                    "tp=1e308",
                    "",
                ],
            ),
            *opt("--precision", PRECISIONS, 0.3),
            *opt("--global-batch", ["64", "0", "-5", "nan", "1e308"], 0.3),
            *opt("--workload-file", files, 0.1),
            *js(),
        ]
    elif cmd == "plan":
        a = [
            "plan",
            "--values",
            "standin",
            "--heuristic",
            *opt("--budget-scale", ["1", "0.5", "0", "-1", "nan", "1e308", "1e-7"], 0.3),
            *opt("--power-scale", ["1", "2", "0", "inf"], 0.3),
            *opt("--price-scale", ["1", "0.1", "-2"], 0.2),
            *opt("--target-h100e", ["1000", "nan", "-5", "1e308"], 0.3),
            *opt("--target-period", ["2024Q4", "2024Q9", "1999Q1", ""], 0.2),
            *opt("--objective", ["max-h100e", "min-cost", "min-tco", "x"], 0.3),
            *opt(
                "--set",
                [
                    "offers.h100.unit_price_usd=350000",
                    "offers.h100.units=x",
                    "sites.nope.power_mw=1",
                    "=",
                    "offers.h100.chips_per_unit=nan",
                ],
                0.3,
            ),
            *opt("--scenario", files + ["tesla-2025", "nope"], 0.15),
            *js(),
        ]
    elif cmd == "compare":
        a = [
            "compare",
            rng.choice(["tesla-2024", "nope", *files]),
            rng.choice(["tesla-2025", "tesla-2024", *files]),
            *js(),
        ]
        a += ["--values", "standin"] if rng.random() < 0.5 else []
    elif cmd == "serve":
        a = [
            "serve",
            *opt("--chip", NAMES, 0.8),
            *opt("--chips", NUMBERS, 0.5),
            *opt("--model", ["llama3-70b", "llama3-8b", "", "nope"], 0.5),
            *js(),
        ]
    elif cmd == "claims":
        a = ["claims", *opt("--only", ["12k-h100-diverted-to-x", "nope", ""], 0.9), *js()]
        if rng.random() < 0.5:
            a = ["claims", "--help"]
    elif cmd == "sweep":
        a = [
            "sweep",
            rng.choice([str(tmp / "toy.toml"), str(tmp / "bad.toml"), *files]),
            "--out",
            rng.choice([str(tmp / "o1"), "", str(tmp / "garbage.toml"), str(tmp)]),
            *opt("--samples", ["4", "0", "-1", "2.5", "1e9x", "nan"], 0.5),
            *opt("--seed", ["0", "-1", "x"], 0.3),
            *opt("--chunk-size", ["2", "0"], 0.3),
            *(["--overwrite"] if rng.random() < 0.3 else []),
            *js(),
        ]
    elif cmd == "calibrate":  # always one bad value: rejected before measuring
        a = [
            "calibrate",
            *rng.choice(
                [
                    ["--collectives", "-3"],
                    ["--steps", "0"],
                    ["--size", "huge"],
                    ["--seed", "-1"],
                    ["--steps", "nan"],
                    ["--chip", "../x"],
                ]
            ),
            *opt("--device", ["cpu", "tpu"], 0.3),
        ]
    elif cmd == "help":
        a = [
            rng.choice(
                [
                    "chips",
                    "chip",
                    "systems",
                    "roofline",
                    "train",
                    "net",
                    "equiv",
                    "plan",
                    "compare",
                    "serve",
                    "claims",
                    "sweep",
                    "calibrate",
                ]
            ),
            "--help",
        ]
    else:
        a = [rng.choice(["bogus", "", "ü", "-x", "--json"])]
    if rng.random() < 0.1:
        a += rng.choice(junk)
    return a


def fixture_files(tmp: Path) -> None:
    (tmp / "latin1.toml").write_bytes(b"# caf\xe9\n")
    (tmp / "garbage.toml").write_text("[[[ not toml\n")
    (tmp / "empty.toml").write_text("")
    (tmp / "toy.toml").write_text('[sweep]\nmodel = "toy"\nsamples = 8\nchunk_size = 4\n')
    (tmp / "bad.toml").write_text('[sweep]\nmodel = "toy"\nsamples = 2.5\n')


def campaign_cli(n: int, seed: int, tmp: Path, budget_s: float) -> dict:
    rng = random.Random(seed)
    fixture_files(tmp)
    counts = {
        k: 0 for k in ("traceback", "exit_code", "nonfinite", "invalid_json", "multiline_error")
    }
    per_cmd: dict[str, list[float]] = {}
    failures, done, rc0, rc2, skipped = [], 0, 0, 0, 0
    t_start = time.perf_counter()
    while done < n and time.perf_counter() - t_start < budget_s:
        argv = gen_argv(rng, tmp)
        cmd = argv[0] if argv else ""
        times = per_cmd.setdefault(cmd, [])
        # commands slower than 5 s a call are sampled less (1 in 4 after the first)
        if times and sum(times) / len(times) > 5.0 and rng.random() < 0.75:
            skipped += 1
            continue
        r = run_cli(argv)
        times.append(r["seconds"])
        done += 1
        rc0 += r["rc"] == 0
        rc2 += r["rc"] == 2
        bad = classify(argv, r)
        for b in bad:
            counts[b] += 1
        if bad:
            failures.append(
                {
                    "argv": argv,
                    "rc": r["rc"],
                    "kinds": bad,
                    "stdout": r["out"][-600:],
                    "stderr": r["err"][-1500:],
                }
            )
    return {
        "invocations": done,
        "exit_0": rc0,
        "exit_2": rc2,
        "skipped_slow": skipped,
        **counts,
        "seconds": round(time.perf_counter() - t_start, 1),
        "mean_s_per_command": {k: round(sum(v) / len(v), 3) for k, v in per_cmd.items() if v},
        "failures": failures,
    }


# --------------------------------------------------------------------------------------
# (b) mutated scenarios
# --------------------------------------------------------------------------------------

#: fields the schema documents as integers (fractions must be rejected) ...
INT_FIELDS = [
    ("offers", "h100", "lead_quarters", 2.5),
    ("scenario", None, "quarters", 2.5),
    ("offers", "gb200", "lead_quarters", 0.5),
]
#: ... and real-valued ones (a fraction may be accepted; the plan must still check)
REAL_FIELDS = [("offers", "dojo", "chips_per_unit", 6.5), ("sites", "cortex", "racks", 1.5)]


def mutate(base: dict, rng: random.Random) -> tuple[str, dict | str, bool | None]:
    """(description, data or raw TOML text, expect_reject: True/False/None = either)."""
    d = copy.deepcopy(base)
    kind = rng.choice(
        [
            "drop",
            "dup",
            "bool_str",
            "int_frac",
            "type",
            "negative",
            "huge",
            "nonfinite",
            "period",
            "events",
            "workload",
            "existing",
            "ratio",
            "budget",
            "table_scalar",
            "unknown_key",
        ]
    )
    off = rng.choice(sorted(d["offers"]))
    site = rng.choice(sorted(d["sites"]))
    if kind == "drop":
        sect = rng.choice(["scenario", "offers", "sites", "budget"])
        tbl = (
            d[sect]
            if sect in ("scenario", "budget")
            else d[sect][off if sect == "offers" else site]
        )
        key = rng.choice(sorted(tbl))
        del tbl[key]
        return f"drop {sect}.{key}", d, None
    if kind == "dup":
        text = SCENARIO.read_text()
        key = rng.choice(["quarters = 9", "pue = 1.1", "chips_per_unit = 4", 'name = "dup"'])
        anchor = rng.choice(["[scenario]", "[sites.legacy]", "[offers.h100]"])
        expect = None if (key.startswith("name") and "offers" in anchor) else True
        return f"duplicate {anchor} {key}", text.replace(anchor, f"{anchor}\n{key}", 1), expect
    if kind == "bool_str":
        f = rng.choice(["own", "counts"])
        d["offers"][off][f] = rng.choice(["false", "true", 0, 1, "no"])
        return f"offers.{off}.{f} = {d['offers'][off][f]!r}", d, True
    if kind == "int_frac":
        if rng.random() < 0.25:
            sect, key, f, v = rng.choice(REAL_FIELDS)
            d[sect][key][f] = v
            return f"{sect}.{key}.{f} = {v} (real-valued field)", d, None
        sect, key, f, v = rng.choice(INT_FIELDS)
        (d[sect] if key is None else d[sect][key])[f] = v
        if rng.random() < 0.3 and d.get("events"):
            d["events"][0]["delay_quarters"] = 1.5
            return "events[0].delay_quarters = 1.5", d, True
        return f"{sect}.{key}.{f} = {v}", d, True
    if kind == "type":
        choice = rng.choice(
            [
                "start_int",
                "quarters_str",
                "power_str",
                "sites_str",
                "chip_int",
                "supply_str",
                "pue_list",
            ]
        )
        if choice == "start_int":
            d["scenario"]["start"] = 2024
        elif choice == "quarters_str":
            d["scenario"]["quarters"] = "8"
        elif choice == "power_str":
            d["sites"][site]["power_mw"] = "80"
        elif choice == "sites_str":
            d["offers"][off]["sites"] = "cortex"
        elif choice == "chip_int":
            d["offers"][off]["chip"] = 100
        elif choice == "supply_str":
            d["offers"][off]["supply_units"] = ["10"] * 8
        else:
            d["sites"][site]["pue"] = [1.2]
        return f"wrong type: {choice} ({off}/{site})", d, True
    if kind == "negative":
        f = rng.choice(
            [
                "chips_per_unit",
                "unit_price_usd",
                "unit_power_w",
                "racks_per_unit",
                "supply_units",
                "lead_quarters",
            ]
        )
        d["offers"][off][f] = rng.choice([-1, -8, -1e9])
        if rng.random() < 0.3:
            d["sites"][site]["power_mw"] = -5
            return f"sites.{site}.power_mw = -5", d, True
        return f"offers.{off}.{f} negative", d, True
    if kind == "huge":
        f = rng.choice(
            ["chips_per_unit", "unit_price_usd", "unit_power_w", "supply_units", "racks_per_unit"]
        )
        d["offers"][off][f] = rng.choice([1e300, 1e30, 2**62, 1e15])
        return f"offers.{off}.{f} = {d['offers'][off][f]:g}", d, None
    if kind == "nonfinite":
        v = rng.choice([float("nan"), float("inf"), float("-inf")])
        where = rng.choice(["price", "power", "pue", "budget", "target"])
        if where == "price":
            d["offers"][off]["unit_price_usd"] = v
        elif where == "power":
            d["sites"][site]["power_mw"] = v
        elif where == "pue":
            d["sites"][site]["pue"] = v
        elif where == "budget":
            d["budget"]["capex_usd"]["2024"] = v
        else:
            d["scenario"]["target_h100e"] = v
        return f"{where} = {v}", d, True
    if kind == "period":
        v = rng.choice(
            ["2024Q5", "2024Q0", "2024", "", "24Q1", "2024q1", "1999Q1", "3000Q1", "2024Q1 "]
        )
        f = rng.choice(["start", "target_period", "earliest", "event", "own_share_from"])
        if f == "start":
            d["scenario"]["start"] = v
        elif f == "target_period":
            d["scenario"]["target_period"] = v
        elif f == "earliest":
            d["offers"][off]["earliest"] = v
        elif f == "own_share_from":
            d["sites"][site]["own_share_min"] = 0.1
            d["sites"][site]["own_share_from"] = v
        else:
            d["events"][0]["period"] = v
        # 1999Q1/3000Q1 are well-formed but outside the horizon: either may be fine
        return (
            f"{f} = {v!r}",
            d,
            None if v in ("1999Q1", "3000Q1") and f != "target_period" else True,
        )
    if kind == "events":
        sup = d["offers"]["h100"]["supply_units"]
        n = rng.randint(2, 5)
        per = rng.choice(["2024Q1", "2024Q2", "2025Q4"])
        t = ["2024Q1", "2024Q2", "2024Q3", "2024Q4", "2025Q1", "2025Q2", "2025Q3", "2025Q4"].index(
            per
        )
        units = rng.choice([sup[t] * 6 // 10, sup[t], sup[t] + 1, 1, 0, -5, 10**9])
        delay = rng.choice([1, 2, 0, 7, 8, 20, -1])
        d["events"] = [
            {"offer": "h100", "units": units, "period": per, "delay_quarters": delay}
            for _ in range(n)
        ]
        if rng.random() < 0.2:
            d["events"].append({"offer": "nope", "units": 1, "period": per, "delay_quarters": 1})
        return f"{n} events h100 {units} units {per} +{delay}", d, None
    if kind == "workload":
        d["workloads"] = (
            [{"name": rng.choice(["nope", "", "gpt-17", "../x"]), "weight": 1.0}]
            if rng.random() < 0.7
            else [{"name": "video-driving", "weight": rng.choice([0, -1, float("nan")])}]
        )
        return f"workloads = {d['workloads']}", d, True
    if kind == "existing":
        e = d["existing"][0]
        f = rng.choice(["chips", "offer", "site"])
        e[f] = {"chips": rng.choice([-1, 2.5, 1e300, "10"]), "offer": "nope", "site": "nope"}[f]
        # chips is real-valued in the schema (2.5 may be accepted); 1e300 must be rejected
        return f"existing[0].{f} = {e[f]!r}", d, None if e[f] == 2.5 else True
    if kind == "ratio":
        r = d["ratios"][0]
        f = rng.choice(["min_ratio", "numerator", "from", "site"])
        r[f] = {
            "min_ratio": rng.choice([-1, float("nan"), 1e300]),
            "numerator": ["nope"],
            "from": "2024Q9",
            "site": "nope",
        }[f]
        return f"ratios[0].{f} = {r[f]!r}", d, None if r[f] == 1e300 else True
    if kind == "budget":
        v = rng.choice(
            [
                {"2024": -1.0},
                {"2024": 1e10, "2023": 1e10, "2025": 8e9},
                {},
                {"x": 1.0, "2025": 1.0},
                5,
            ]
        )
        d["budget"]["capex_usd"] = v
        return f"budget.capex_usd = {v!r}", d, None if v == {} else True
    if kind == "table_scalar":
        which = rng.choice(["sites.legacy", "offers.h100", "budget", "scenario"])
        if "." in which:
            a, b = which.split(".")
            d[a][b] = 5
        else:
            d[which] = 5
        return f"{which} = 5", d, True
    d["offers"][off]["unit_prise_usd"] = 1
    return f"offers.{off}.unit_prise_usd (unknown key)", d, True


def supply_bound_violations(data: dict, pj: dict) -> list[str]:
    """Units bought per offer, cumulative by delivery quarter, never exceed the raw
    supply_units to that quarter (events only delay supply): computed here from the TOML."""
    periods = pj["periods"]
    bought: dict[str, list[float]] = {}
    for p in pj["purchases"]:
        row = bought.setdefault(p["offer"], [0.0] * len(periods))
        row[periods.index(p["period"])] += p["units"]
    msgs = []
    for off, row in bought.items():
        s = data["offers"][off].get("supply_units")
        if s is None:
            continue
        sup = list(s) if isinstance(s, list) else [s] * len(periods)
        cb = cs = 0.0
        for t in range(len(periods)):
            cb += row[t]
            cs += sup[t] if t < len(sup) else 0
            if cb > cs + 1e-6:
                msgs.append(f"{off}: {cb:g} units bought by {periods[t]} > raw supply {cs:g}")
                break
    return msgs


def independent_check(path: Path, data: dict, pj: dict) -> list[str]:
    import numpy as np

    from perfmodel.fleet.check import check_feasible
    from perfmodel.fleet.overrides import load_with_overrides
    from perfmodel.fleet.problem import build_problem

    msgs = supply_bound_violations(data, pj)
    sc, _ = load_with_overrides(str(path), [])
    pr = build_problem(sc, value_source="standin")
    offers, sites, periods = pj["offers"], pj["sites"], pj["periods"]
    buy = np.zeros((len(offers), len(sites), len(periods)))
    for p in pj["purchases"]:
        buy[offers.index(p["offer"]), sites.index(p["site"]), periods.index(p["period"])] += p[
            "units"
        ]
    msgs += check_feasible(pr, buy)
    if not pj.get("feasible", False):
        msgs.append("exit 0 but feasible is false")
    return msgs


def campaign_scenarios(n: int, seed: int, tmp: Path) -> dict:
    import tomli_w

    rng = random.Random(seed)
    base = tomllib.loads(SCENARIO.read_text())
    counts = {
        k: 0
        for k in (
            "traceback",
            "exit_code",
            "nonfinite",
            "invalid_json",
            "multiline_error",
            "invalid_accepted",
            "checker_failed",
        )
    }
    plans_checked = plans_passed = rc0 = rc2 = 0
    failures, rejections, accepted = [], [], []
    t0 = time.perf_counter()
    for i in range(n):
        desc, data, expect_reject = mutate(base, rng)
        path = tmp / f"mut{i}.toml"
        if isinstance(data, str):
            path.write_text(data)
            parsed = None
        else:
            try:
                path.write_text(tomli_w.dumps(data))
            except Exception as e:  # noqa: BLE001  (tomli_w cannot write it: skip)
                desc += f" (unwritable: {e})"
                continue
            parsed = data
        argv = ["plan", "--scenario", str(path), "--values", "standin", "--heuristic", "--json"]
        r = run_cli(argv)
        bad = classify(argv, r)
        rc0 += r["rc"] == 0
        rc2 += r["rc"] == 2
        if r["rc"] == 0 and "invalid_json" not in bad and "nonfinite" not in bad:
            if expect_reject:
                bad.append("invalid_accepted")
            pj = json.loads(r["out"])
            plans_checked += 1
            try:
                msgs = independent_check(path, parsed or tomllib.loads(path.read_text()), pj)
            except Exception as e:  # noqa: BLE001
                msgs = [f"checker raised {type(e).__name__}: {e}"]
            if msgs:
                bad.append("checker_failed")
            else:
                plans_passed += 1
        for b in bad:
            counts[b] += 1
        if r["rc"] == 0:
            accepted.append(desc)
        if r["rc"] == 2 and len(rejections) < 400:
            last = (r["err"].strip().splitlines() or ["(no message)"])[-1]
            rejections.append(f"{desc} -> {last[:200]}")
        if bad:
            failures.append(
                {
                    "mutation": desc,
                    "rc": r["rc"],
                    "kinds": bad,
                    "stdout": r["out"][:400],
                    "stderr": r["err"][-1500:],
                }
            )
    return {
        "scenarios": n,
        "exit_0": rc0,
        "exit_2": rc2,
        **counts,
        "plans_checked": plans_checked,
        "plans_passed": plans_passed,
        "seconds": round(time.perf_counter() - t0, 1),
        "failures": failures,
        "rejections": rejections,
        "accepted": accepted,
    }


# --------------------------------------------------------------------------------------
# (c) the large scenario
# --------------------------------------------------------------------------------------

LARGE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import perfmodel.fleet.overrides as ov
from perfmodel.fleet.testing import generate_scenario
from perfmodel import cli
sc = generate_scenario({seed}, n_offers=8, n_sites=120, n_periods=40)
ov.load_with_overrides = lambda name, sets=(): (sc, [])
t1 = time.perf_counter()
rc = cli.main({argv!r})
sys.stdout.flush()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print("\nCAMPAIGN " + json.dumps({{"rc": rc, "plan_seconds": time.perf_counter() - t1,
      "peak_rss_gib": peak}}), file=sys.stderr)
"""


def campaign_large(seed: int, heuristic: bool, timeout: float) -> dict:
    argv = ["plan", "--values", "standin", "--json"] + (["--heuristic"] if heuristic else [])
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            [sys.executable, "-c", LARGE.format(seed=seed, argv=argv)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
    except subprocess.TimeoutExpired:
        return {"argv": argv, "result": f"timeout after {timeout:.0f} s", "met": False}
    wall = time.perf_counter() - t0
    info = {}
    for line in p.stderr.splitlines():
        if line.startswith("CAMPAIGN "):
            info = json.loads(line[len("CAMPAIGN ") :])
    err = [
        s
        for s in p.stderr.splitlines()
        if s.strip() and not s.startswith("CAMPAIGN") and not BANNER.match(s)
    ]
    res = {
        "argv": argv,
        "returncode": p.returncode,
        "wall_s": round(wall, 1),
        **info,
        "stderr_tail": err[-3:],
    }
    if info.get("rc") == 0:
        try:
            pj = json.loads(p.stdout)
            res["feasible"] = pj.get("feasible")
            res["h100e_quarters"] = pj.get("h100e_quarters")
        except ValueError:
            res["feasible"] = "invalid JSON"
        res["met"] = info["peak_rss_gib"] <= 4.0 and res.get("feasible") is True
    elif info.get("rc") == 2:
        res["met"] = info["plan_seconds"] <= 5.0 and len(err) == 1
    else:
        res["met"] = False
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Issue 16 robustness campaign (fuzzed CLI, mutated scenarios, large plan)."
    )
    ap.add_argument("--quick", action="store_true", help="120 CLI, 30 scenarios, (c) heuristic")
    ap.add_argument("--seed", type=int, default=1616, help="campaign seed (new per run)")
    ap.add_argument("--cli", type=int, help="number of CLI invocations (default 920)")
    ap.add_argument("--scenarios", type=int, help="number of mutated scenarios (default 160)")
    ap.add_argument("--cli-budget-s", type=float, default=600.0, help="time budget for (a)")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument(
        "--large-only",
        action="store_true",
        help="run (c) alone and merge it into an existing --out JSON",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    n_cli = a.cli or (120 if a.quick else 920)
    n_sc = a.scenarios or (30 if a.quick else 160)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if a.large_only:
        res = json.loads(a.out.read_text())
        res["large"] = [campaign_large(a.seed, True, 600)]
        if not a.quick:
            res["large"].append(campaign_large(a.seed, False, 600))
        a.out.write_text(json.dumps(res, indent=1, default=str))
        for r in res["large"]:
            print(json.dumps(r)[:600])
        return 0
    res: dict = {
        "seed": a.seed,
        "quick": a.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        res["cli"] = campaign_cli(n_cli, a.seed, tmp / "a", a.cli_budget_s)
        res["scenarios"] = campaign_scenarios(n_sc, a.seed + 1, tmp / "b")
    if not a.skip_large:
        res["large"] = [campaign_large(a.seed, True, 600)]
        if not a.quick:
            res["large"].append(campaign_large(a.seed, False, 600))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, default=str))
    c, s = res["cli"], res["scenarios"]
    print(f"seed {a.seed}   results: {a.out}")
    print(
        f"{'(a) CLI':<26}{c['invocations']:>6} invocations  (exit 0: {c['exit_0']}, "
        f"exit 2: {c['exit_2']}, {c['seconds']} s)"
    )
    for k in ("traceback", "exit_code", "nonfinite", "invalid_json", "multiline_error"):
        print(f"    {k:<22}{c[k]:>6}")
    print(
        f"{'(b) scenarios':<26}{s['scenarios']:>6} mutated  (exit 0: {s['exit_0']}, "
        f"exit 2: {s['exit_2']}, {s['seconds']} s)"
    )
    for k in (
        "traceback",
        "exit_code",
        "nonfinite",
        "invalid_json",
        "multiline_error",
        "invalid_accepted",
        "checker_failed",
    ):
        print(f"    {k:<22}{s[k]:>6}")
    print(f"    plans passing checker {s['plans_passed']:>4} / {s['plans_checked']}")
    for r in res.get("large", []):
        print(
            f"(c) 120x8x40 {' '.join(r['argv'][3:]) or '(default)'}: met={r['met']} "
            + json.dumps({k: v for k, v in r.items() if k not in ("argv", "met")})[:300]
        )
    for f in (c["failures"] + s["failures"])[:20]:
        print("FAIL", json.dumps({k: f[k] for k in f if k not in ("stdout",)})[:500])
    return 0


if __name__ == "__main__":
    sys.exit(main())
