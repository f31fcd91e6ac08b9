from _sites import STAFF, build
from zongji.site import dialplan
from zongji.site.dialplan import MATCH, MATCH_OR_MORE, NEED_MORE, NO_MATCH


def test_extension_completes_as_soon_as_unique():
    dp = build().dialplan
    assert dp.match("2") == (NEED_MORE, None)
    assert dp.match("20") == (NEED_MORE, None)
    assert dp.match("201") == (MATCH, ("ext", "201"))


def test_groups_and_menus_have_numbers():
    dp = build().dialplan
    assert dp.match("600") == (MATCH, ("group", "600"))
    assert dp.match("800") == (MATCH, ("menu", "main"))


def test_unknown_number_is_rejected_at_the_first_impossible_digit():
    dp = build().dialplan
    assert dp.match("3")[0] == NO_MATCH
    assert dp.match("29")[0] == NO_MATCH
    assert dp.match("2019")[0] == NO_MATCH


def test_prefix_of_longer_number_waits_for_interdigit_timeout():
    rows = STAFF + [["2011", "Extra", "", "s3cret-2011x", "", "staff", 0, "", ""]]
    dp = build(rows=rows).dialplan
    assert dp.match("201") == (MATCH_OR_MORE, ("ext", "201"))
    assert dp.match("2011") == (MATCH, ("ext", "2011"))


def test_emergency_numbers_always_complete():
    dp = build().dialplan
    assert dp.match("1") == (NEED_MORE, None)
    assert dp.match("11") == (NEED_MORE, None)
    assert dp.match("110") == (MATCH, ("emergency", "110"))
    assert dp.match("120") == (MATCH, ("emergency", "120"))
    # with the outside-line prefix too: people dial it out of habit
    assert dp.match("0110") == (MATCH, ("emergency", "110"))


def test_outside_numbers_classified_and_completed():
    dp = build().dialplan
    assert dp.match("0") == (NEED_MORE, None)
    status, target = dp.match("013800138000")
    assert status == MATCH and target == ("external", "13800138000", "mobile")
    status, target = dp.match("00044")
    assert status == MATCH_OR_MORE and target[2] == "international"


def test_menu_dialing_never_reaches_outside_or_emergency():
    dp = build().dialplan
    assert dp.match("013800138000", internal=True)[0] == NO_MATCH
    assert dp.match("110", internal=True)[0] == NO_MATCH
    assert dp.match("201", internal=True) == (MATCH, ("ext", "201"))


def test_class_of_service_guards_the_trunk():
    site = build()
    dp = site.dialplan
    mobile = ("external", "13800138000", "mobile")
    intl = ("external", "00441234567890", "international")
    assert dp.authorize("internal", mobile) == dialplan.FORBIDDEN
    assert dp.authorize("staff", mobile) == dialplan.OK
    assert dp.authorize("staff", intl) == dialplan.FORBIDDEN
    assert dp.authorize("manager", intl) == dialplan.NEED_PIN
    assert dp.authorize("no-such-class", mobile) == dialplan.FORBIDDEN
    assert dp.authorize("internal", ("ext", "201")) == dialplan.OK


def test_lookup_cost_does_not_depend_on_directory_size():
    # The plan holds only dict probes on int codes; a 1000-entry directory answers the same.
    rows = [[str(3000 + i), "N%d" % i, "", "secret-%d-xx" % i, "", "staff", 0, "", ""] for i in range(1000)]
    dp = build(rows=STAFF + rows).dialplan
    assert dp.match("3999") == (MATCH, ("ext", "3999"))
    assert dp.match("399") == (NEED_MORE, None)
    assert len(dp._prefixes) < 200  # prefixes are shared, not one per entry per digit
