import perfmodel
from perfmodel import roofline as r


def test_h100_matmul_hand_value():
    h = perfmodel.chip("h100")
    t = r.op_time(r.matmul(8192, 8192, 8192, "bf16"), h, r.Efficiency.ideal())
    assert abs(float(t.time_s) - 2 * 8192**3 / 989.4e12) < 1e-12
    assert int(t.bound) == 0


def test_verbose_prints_compile_apart_from_run(capsys):
    from perfmodel.cli import main

    rc = main(
        [
            "roofline",
            "--chip",
            "h100",
            "--op",
            "matmul",
            "--m",
            "64",
            "--n",
            "64",
            "--k",
            "64",
            "--verbose",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 0 and err.startswith("perfmodel roofline: ")
    for word in ("tracing", "lowering", "compile", "programs", "persistent cache", "+ run"):
        assert word in err
    total = float(err.split(": ", 1)[1].split(" s", 1)[0])
    pieces = [
        float(err.split(f"{w} ", 1)[1].split(" s", 1)[0])
        for w in ("tracing", "lowering", "compile", "+ run")
    ]
    assert all(x >= 0 for x in pieces) and abs(sum(pieces) - total) < 0.02
