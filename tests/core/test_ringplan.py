from _sites import build
from zongji.call.ringplan import ring_plan


def test_desk_phone_rings_alone():
    assert ring_plan(build(), ("ext", "202")) == [([("desk", "202")], None)]


def test_follow_me_rings_desk_then_mobile():
    assert ring_plan(build(), ("ext", "201")) == [([("desk", "201")], 20), ([("trunk", "13800138001")], None)]


def test_mobile_only_colleague_is_reached_over_the_trunk():
    assert ring_plan(build(), ("ext", "205")) == [([("trunk", "13900139005")], None)]


def test_ring_all_group_forks_in_parallel():
    plan = ring_plan(build(), ("group", "600"))
    assert plan == [([("desk", "201"), ("desk", "202"), ("desk", "210")], 15)]


def test_in_order_group_rings_one_after_another():
    plan = ring_plan(build(), ("group", "601"))
    assert plan == [([("desk", "203")], 10), ([("desk", "204")], 10)]


def test_outside_number_goes_to_trunk():
    assert ring_plan(build(), ("external", "13800138000", "mobile")) == [([("trunk", "13800138000")], None)]
    assert ring_plan(build(), ("emergency", "110")) == [([("trunk", "110")], None)]


def test_unknown_targets_ring_nobody():
    assert ring_plan(build(), ("ext", "299")) == []
    assert ring_plan(build(), ("group", "699")) == []
