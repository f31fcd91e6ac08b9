from _sites import STAFF, ext_dicts, raw_site
from zongji.site import checks, schema


def problems_of(raw=None, rows=None):
    site, problems = schema.normalize(raw if raw is not None else raw_site())
    return problems + checks.check(site, ext_dicts(rows))


def errors(ps):
    return [p for p in ps if p[0] == "error"]


def find(ps, path, word, level="error"):
    for p in ps:
        if p[0] == level and p[1] == path and word in p[2]:
            return p
    raise AssertionError("no %s at %r mentioning %r in %r" % (level, path, word, ps))


def test_example_site_is_clean():
    ps = problems_of()
    assert errors(ps) == [], ps


def test_duplicate_short_number_names_the_first_user():
    rows = STAFF + [["201", "Dup", "", "another-secret", "", "staff", 0, "", ""]]
    p = find(problems_of(rows=rows), ("staff", len(STAFF), "number"), "already used")
    assert "already used by extension 201 (王小明)" in p[2]


def test_group_number_clashing_with_extension():
    raw = raw_site()
    raw["groups"]["201"] = {"name": "X", "members": ["202"]}
    find(problems_of(raw), ("groups", "201"), "already used")


def test_prefix_warning_explains_the_wait():
    rows = STAFF + [["20", "Short", "", "another-secret", "", "staff", 0, "", ""]]
    p = find(problems_of(rows=rows), ("staff", len(STAFF), "number"), "waits 3 s", "warning")
    assert "201" in p[2]


def test_emergency_collisions_are_errors():
    for num in ("110", "11", "1190", "120"):
        rows = STAFF + [[num, "E", "", "another-secret", "", "staff", 0, "", ""]]
        find(problems_of(rows=rows), ("staff", len(STAFF), "number"), "emergency")


def test_us_site_knows_911():
    raw = raw_site()
    raw["branch"]["country"] = "US"
    raw["dialplan"]["outside_prefix"] = "9"
    rows = STAFF + [["911", "E", "", "another-secret", "", "staff", 0, "", ""]]
    ps = problems_of(raw, rows)
    find(ps, ("staff", len(STAFF), "number"), "emergency")


def test_number_starting_with_outside_prefix():
    rows = STAFF + [["0201", "Zero", "", "another-secret", "", "staff", 0, "", ""]]
    find(problems_of(rows=rows), ("staff", len(STAFF), "number"), "outside-line prefix")


def test_bad_number_shape():
    for num in ("1", "1234567", "2a1", ""):
        rows = STAFF + [[num, "Bad", "", "another-secret", "", "staff", 0, "", ""]]
        find(problems_of(rows=rows), ("staff", len(STAFF), "number"), "2 to 6 digits")


def test_menu_option_to_missing_targets():
    raw = raw_site()
    raw["menus"]["main"]["options"]["3"] = "menu:salse"
    raw["menus"]["main"]["options"]["4"] = "777"
    raw["menus"]["main"]["options"]["5"] = "bogus target"
    ps = problems_of(raw)
    find(ps, ("menus", "main", "options", "3"), "no menu 'salse'")
    find(ps, ("menus", "main", "options", "4"), "not a short number")
    find(ps, ("menus", "main", "options", "5"), "not a target")


def test_unreachable_menu_is_a_warning():
    raw = raw_site()
    raw["menus"]["orphan"] = {"prompt": "x", "options": {"1": "201"}}
    find(problems_of(raw), ("menus", "orphan"), "can't be reached", "warning")


def test_menu_cycle_without_exit_is_a_trap():
    raw = raw_site()
    raw["menus"]["main"]["options"]["7"] = "menu:a"
    raw["menus"]["a"] = {"prompt": "a", "options": {"1": "menu:b"}, "on_timeout": "menu:b", "on_invalid": "repeat"}
    raw["menus"]["b"] = {
        "prompt": "b",
        "options": {"1": "menu:a", "2": "back"},
        "on_timeout": "menu:a",
        "on_invalid": "menu:a",
    }
    ps = problems_of(raw)
    find(ps, ("menus", "a"), "trap")
    find(ps, ("menus", "b"), "trap")
    assert not [p for p in ps if p[1] == ("menus", "main") and "trap" in p[2]]


def test_cycle_with_an_exit_is_fine():
    raw = raw_site()
    raw["menus"]["main"]["options"]["7"] = "menu:a"
    raw["menus"]["a"] = {"prompt": "a", "options": {"1": "menu:main"}}
    assert errors(problems_of(raw)) == []


def test_hundred_level_menu_tree_is_refused_without_recursion():
    raw = raw_site()
    raw["menus"]["main"]["options"]["7"] = "menu:m1"
    for i in range(1, 101):
        nxt = "menu:m%d" % (i + 1) if i < 100 else "201"
        raw["menus"]["m%d" % i] = {"prompt": "level %d" % i, "options": {"1": nxt}}
    ps = problems_of(raw)
    p = find(ps, ("menus", "m10"), "levels below")
    assert "limit 10" in p[2]


def test_missing_main_menu():
    raw = raw_site()
    raw["attendant"]["main_menu"] = "start"
    find(problems_of(raw), ("attendant", "main_menu"), "not defined")


def test_bad_opening_hours():
    raw = raw_site()
    raw["hours"]["open"] = ["mon-fri 09:00-18:00", "mnday 9-5"]
    raw["hours"]["holidays"] = ["2026-02-30"]
    ps = problems_of(raw)
    find(ps, ("hours", "open", 1), "mnday")
    find(ps, ("hours", "holidays", 0), "2026-02-30")


def test_ring_groups_with_unknown_or_no_members():
    raw = raw_site()
    raw["groups"]["600"]["members"] = ["201", "299", "601"]
    raw["groups"]["601"]["members"] = []
    raw["groups"]["601"]["strategy"] = "random"
    ps = problems_of(raw)
    find(ps, ("groups", "600", "members"), "299")
    find(ps, ("groups", "600", "members"), "members must be extensions")
    find(ps, ("groups", "601", "members"), "no members")
    find(ps, ("groups", "601", "strategy"), "ring-all")


def test_international_without_pin_warns_toll_fraud():
    raw = raw_site()
    raw["dialout"]["classes"]["boss"] = {"allow": ["international"]}
    p = find(problems_of(raw), ("dialout", "classes", "boss", "allow"), "toll fraud", "warning")
    assert "pin" in p[2]


def test_operator_must_be_a_person_or_group():
    raw = raw_site()
    raw["operator"]["target"] = "menu:main"
    find(problems_of(raw), ("operator", "target"), "extension or ring group")


def test_guessable_secret_and_unknown_class():
    rows = [list(r) for r in STAFF]
    rows[1][3] = "201"
    rows[2][5] = "staf"
    ps = problems_of(rows=rows)
    find(ps, ("staff", 1, "secret"), "guess")
    find(ps, ("staff", 2, "class"), "did you mean 'staff'")


def test_mobile_needs_a_trunk():
    raw = raw_site()
    del raw["trunk"]
    ps = problems_of(raw)
    find(ps, ("staff", 1, "mobile"), "no [trunk]")


def test_unknown_digest_algorithm():
    raw = raw_site()
    raw["staff"]["digest"] = ["SHA-1"]
    find(problems_of(raw), ("staff", "digest"), "unknown digest algorithm 'SHA-1'")


def test_trivial_pins_are_warned_about():
    for pin in ("1234", "0000", "7777", "9876", "123456", "890123"):
        rows = [r[:7] + [pin, r[8]] if r[0] == "203" else r for r in STAFF]
        p = find(problems_of(rows=rows), ("staff", 3, "pin"), "first a thief tries", "warning")
        assert pin in p[2]
    rows = [r[:7] + ["203203", r[8]] if r[0] == "203" else r for r in STAFF]
    find(problems_of(rows=rows), ("staff", 3, "pin"), "the extension number", "warning")
    rows = [r[:7] + ["4827", r[8]] if r[0] == "203" else r for r in STAFF]
    assert [p for p in problems_of(rows=rows) if p[1] == ("staff", 3, "pin")] == []


def test_mobile_hints_for_spaces_and_excel():
    rows = [r[:4] + ["138 0013 8001"] + r[5:] if r[0] == "201" else r for r in STAFF]
    p = find(problems_of(rows=rows), ("staff", 1, "mobile"), "not a phone number")
    assert "remove the spaces, write 13800138001" in p[2]
    rows = [r[:4] + ["1.38001E+10"] + r[5:] if r[0] == "201" else r for r in STAFF]
    p = find(problems_of(rows=rows), ("staff", 1, "mobile"), "not a phone number")
    assert "format the column as Text" in p[2]


def test_a_menu_name_as_a_target_suggests_the_prefix():
    raw = raw_site()
    raw["menus"]["main"]["options"]["2"] = "support"
    p = find(problems_of(raw), ("menus", "main", "options", "2"), "not a target")
    assert 'write "menu:support"' in p[2]


def test_overlapping_hours_and_a_holiday_workday_are_warned_about():
    raw = raw_site()
    raw["hours"]["open"] = ["mon-fri 09:00-18:00", "sat 09:00-12:00", "wed 10:00-11:00"]
    raw["hours"]["workdays"] = ["2026-10-10", "2026-10-06"]
    ps = problems_of(raw)
    p = find(ps, ("hours", "open", 2), "overlap on wed: 09:00-18:00 and 10:00-11:00", "warning")
    find(ps, ("hours", "workdays", 1), "also a holiday (2026-10-01..2026-10-07)", "warning")
    assert [q for q in ps if q[1] in (("hours", "open", 0), ("hours", "open", 1), ("hours", "workdays", 0))] == []
    assert p[0] == "warning"


def test_errors_only_skips_the_warnings_and_keeps_the_errors():
    # what bundle.load asks for on the device: nobody there reads a warning
    raw = raw_site()
    raw["hours"]["open"] = ["mon-fri 09:00-18:00", "wed 10:00-11:00", "sun 25:00-26:00"]
    raw["hours"]["workdays"] = ["2026-10-06"]
    site, _ = schema.normalize(raw)
    full = checks.check(site, ext_dicts())
    assert [p for p in full if p[0] == "warning"], full  # the host shows them ...
    only = checks.check(site, ext_dicts(), warnings=False)
    assert only == errors(full) and only, only  # ... the device gets the same errors, in order
    find(only, ("hours", "open", 2), "bad time")


def test_an_empty_provider_password_is_a_warning():
    raw = raw_site()
    raw["trunk"]["password"] = ""
    find(problems_of(raw), ("trunk", "password"), "provider password is empty", "warning")


def test_pulled_secret_and_pin_forms_are_accepted_and_malformed_ones_named():
    md5 = "0123456789abcdef" * 2
    sha = md5 * 2
    good = [["206", "A", "", "ha1:" + md5, "", "staff", 0, "hash:" + "ab" * 8, ""],
            ["207", "B", "", "ha1:%s:%s" % (md5, sha), "", "staff", 0, "", ""]]  # fmt: skip
    assert errors(problems_of(rows=STAFF + good)) == []
    for secret in ("ha1:xyz", "ha1:" + md5[:-1], "ha1:%s:%s" % (md5, sha[:-2]), "ha1:" + md5.upper()):
        rows = STAFF + [["206", "A", "", secret, "", "staff", 0, "", ""]]
        find(problems_of(rows=rows), ("staff", len(STAFF), "secret"), "zongji pull")
    rows = STAFF + [["206", "A", "", "ha1:" + md5, "", "staff", 0, "hash:123", ""]]
    find(problems_of(rows=rows), ("staff", len(STAFF), "pin"), "hash:")
