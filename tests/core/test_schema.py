from _sites import raw_site
from zongji.site import schema


def test_defaults_are_filled():
    site, problems = schema.normalize(raw_site())
    assert problems == []
    assert site["menus"]["support"]["timeout"] == 5
    assert site["menus"]["support"]["retries"] == 2
    assert site["groups"]["600"]["member_timeout"] == 15
    assert site["attendant"]["dial_by_name"] is True
    assert "internal" in site["dialout"]["classes"]


def test_unknown_key_suggests_the_right_one():
    raw = raw_site()
    raw["menus"]["main"]["timout"] = 4
    raw["branch"]["contry"] = "CN"
    site, problems = schema.normalize(raw)
    msgs = dict((p[1], p[2]) for p in problems)
    assert "did you mean 'timeout'" in msgs[("menus", "main", "timout")]
    assert "did you mean 'country'" in msgs[("branch", "contry")]


def test_unknown_section():
    raw = raw_site()
    raw["menu"] = {}
    site, problems = schema.normalize(raw)
    assert problems[0][1] == ("menu",) and "did you mean 'menus'" in problems[0][2]


def test_wrong_types_are_reported_not_raised():
    raw = raw_site()
    raw["menus"]["main"]["timeout"] = "five"
    raw["menus"]["main"]["dial_extensions"] = "yes"
    raw["groups"]["600"]["members"] = "201,202"
    raw["branch"] = "Shanghai"
    site, problems = schema.normalize(raw)
    paths = [p[1] for p in problems]
    assert ("menus", "main", "timeout") in paths
    assert ("menus", "main", "dial_extensions") in paths
    assert ("groups", "600", "members") in paths
    assert ("branch",) in paths


def test_missing_required():
    raw = raw_site()
    del raw["operator"]
    site, problems = schema.normalize(raw)
    assert any("needs a [operator]" in p[2] for p in problems)


def test_not_a_table_at_all():
    site, problems = schema.normalize([1, 2])
    assert problems and problems[0][0] == "error"


def test_distance():
    assert schema.distance("kitten", "sitting") == 3
    assert schema.distance("timeout", "timout") == 1
    assert schema.suggest("zzzzzz", ["timeout", "retries"]) is None


def test_numbers_where_strings_belong_say_quote_them():
    raw = raw_site()
    raw["groups"]["600"]["members"] = [201, 202]
    raw["menus"]["main"]["number"] = 800
    raw["menus"]["main"]["options"] = {"1": 600}
    _, ps = schema.normalize(raw)
    msgs = dict((p[1], p[2]) for p in ps)
    assert 'quote them, members = ["201", "202"]' in msgs[("groups", "600", "members")]
    assert 'quote it, number = "800"' in msgs[("menus", "main", "number")]
    assert 'quote the numbers, e.g. "1" = "600"' in msgs[("menus", "main", "options")]
