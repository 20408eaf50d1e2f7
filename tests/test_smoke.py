import perfmodel
from perfmodel import roofline as r


def test_h100_matmul_hand_value():
    h = perfmodel.chip("h100")
    t = r.op_time(r.matmul(8192, 8192, 8192, "bf16"), h, r.Efficiency.ideal())
    assert abs(float(t.time_s) - 2 * 8192**3 / 989.4e12) < 1e-12
    assert int(t.bound) == 0
