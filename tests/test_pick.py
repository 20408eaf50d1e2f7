"""``--pick`` means the same in every command (issue 16 item 8): the same choices and
help, and ``low``/``high`` move the model's answer the way the low/high figures do."""

from __future__ import annotations

import argparse
import json

import pytest

from perfmodel import cli
from perfmodel.commands._pick import PICK_HELP
from perfmodel.hardware import PICKS


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_pick_flag_has_one_meaning():
    with_pick = {}
    for name, p in _subcommands().items():
        for a in p._actions:
            if "--pick" in a.option_strings:
                with_pick[name] = a
    assert {"chips", "chip", "systems", "roofline", "net", "train", "plan"} <= set(with_pick)
    head = PICK_HELP.split("{default}")[0]
    for name, a in with_pick.items():
        assert tuple(a.choices) == PICKS, name
        assert a.help.startswith(head), (name, a.help)
        assert a.default in ("best", None), name


def test_commands_that_report_ranges_take_no_pick():
    for name in ("equiv", "claims"):
        opts = {o for a in _subcommands()[name]._actions for o in a.option_strings}
        assert "--pick" not in opts, name


def _json(capfd, argv) -> dict:
    rc = cli.main(argv)
    out, err = capfd.readouterr()
    assert rc == 0, err
    return json.loads(out)


def test_net_pick_moves_the_link_rates(capfd):
    # the FSD computer's Ethernet rate is an estimate (1 / 10 / 25 GbE)
    rates = {
        p: _json(capfd, ["net", "ai4", "--pick", p, "--json"])["scaleup"]["nominal_bytes_per_s"]
        for p in PICKS
    }
    assert rates["low"] <= rates["best"] <= rates["high"] and rates["low"] < rates["high"]


@pytest.mark.slow
def test_train_pick_low_is_not_faster_than_high(capfd):
    tiny = ["--layers", "2", "--hidden", "256", "--heads", "4", "--seq", "256", "--vocab", "1024"]
    rate = {
        p: _json(
            capfd, ["train", *tiny, "--chip", "dojo_tile", "--chips", "8", "--pick", p, "--json"]
        )
        for p in PICKS
    }
    assert all(rate[p]["pick"] == p for p in PICKS)
    tps = {p: rate[p]["tokens_per_s"] for p in PICKS}
    assert tps["low"] <= tps["best"] <= tps["high"] and tps["low"] < tps["high"], tps
