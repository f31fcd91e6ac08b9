"""The site-file reader on its own: key lines, CSV layouts, limits, problem locations."""

import os
import time

from _sitedirs import edit, line_of, new_site
from zongji_companion import sitefiles
from zongji_companion.sitefiles import FILE, key_lines, load

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

TOML = '''# a comment with [brackets] and key = "value"
[branch]
name = "X"   # trailing comment
"odd key" = 'literal'

[menus.main]
prompt = """two
[not.a.table] = 1
lines"""
options = { "1" = "201", "*" = "repeat" }
timing.first = 3

[menus."with space"]
options = {"0" = "operator"}

[hours]
open = [
  "mon-fri 09:00-12:00",
  "sat 09:00-12:00", "sun 10:00-11:00",
]
holidays = ["2026-10-01"]
'''


def test_key_lines_maps_headers_keys_inline_tables_and_array_elements():
    lines = key_lines(TOML)
    assert lines[("branch",)] == 2
    assert lines[("branch", "name")] == 3
    assert lines[("branch", "odd key")] == 4
    assert lines[("menus",)] == 6
    assert lines[("menus", "main", "prompt")] == 7
    assert ("not", "a", "table") not in lines  # inside a multi-line string
    assert lines[("menus", "main", "options")] == 10
    assert lines[("menus", "main", "options", "*")] == 10
    assert lines[("menus", "main", "timing", "first")] == 11
    assert lines[("menus", "with space", "options", "0")] == 14
    assert lines[("hours", "open")] == 17
    assert [lines[("hours", "open", i)] for i in range(3)] == [18, 19, 19]
    assert lines[("hours", "holidays", 0)] == 21


def test_locate_falls_back_to_the_nearest_known_parent(tmp_path):
    (tmp_path / "site.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "staff.csv").write_text("number,name\n201,A\n", encoding="utf-8")
    loaded = load(tmp_path)
    assert loaded.locate(("menus", "main", "options", "9")) == ("site.toml", 10)
    assert loaded.locate(("menus", "main", "retries")) == ("site.toml", 6)
    assert loaded.locate(("trunk", "host")) == ("site.toml", 1)
    assert loaded.locate(()) == ("site.toml", 1)
    assert loaded.locate(("staff", 0, "name")) == ("staff.csv", 2)
    assert loaded.locate((FILE, "staff.csv", 7)) == ("staff.csv", 7)


def test_csv_lines_count_quoted_multiline_cells(tmp_path):
    folder = new_site(tmp_path)
    (folder / "staff.csv").write_text(
        "Number,NAME,Dept,Secret,Follow Me\n"
        '201,"Lily\n王丽",Sales,s3cret-201-x,\n'
        "\n"
        '202,张伟,"Sales,\n\nEast",s3cret-202-x,\n'
        "203,王芳,Sales,s3cret-203-x,soon\n",
        encoding="utf-8",
    )
    loaded = load(folder)
    assert [e["number"] for e in loaded.extensions] == ["201", "202", "203"]
    assert loaded.extensions[0]["name"] == "Lily\n王丽"
    assert loaded.locate(("staff", 1, "name")) == ("staff.csv", 5)
    (problem,) = loaded.problems
    assert problem[1] == ("staff", 2, "follow_me")
    assert loaded.locate(problem[1]) == ("staff.csv", 8)


def test_csv_aliases_strip_and_types(tmp_path):
    folder = new_site(tmp_path)
    (folder / "staff.csv").write_text(
        "Extension , Display Name,DEPT,SIP Secret,Cell,COS,ring_time,PIN\n"
        " 201 ,  Lily 王丽 ,Sales, s3cret ,13800138001,staff, 20 ,1234\n",
        encoding="utf-8",
    )
    loaded = load(folder)
    assert loaded.problems == []
    ext = loaded.extensions[0]
    assert set(ext) == set(sitefiles.FIELDS)
    assert ext["number"] == "201" and ext["name"] == "Lily 王丽" and ext["secret"] == "s3cret"
    assert ext["mobile"] == "13800138001" and ext["class"] == "staff" and ext["pin"] == "1234"
    assert ext["follow_me"] == 20


def test_semicolon_csv_from_a_european_excel(tmp_path):
    folder = new_site(tmp_path)
    (folder / "staff.csv").write_text("number;name;secret\n201;Müller, Jörg;s3cret-201-x\n", encoding="utf-8")
    loaded = load(folder)
    assert loaded.problems == []
    assert loaded.extensions[0]["name"] == "Müller, Jörg"


def test_extra_cells_and_duplicate_columns(tmp_path):
    folder = new_site(tmp_path)
    (folder / "staff.csv").write_text("number,name,ext\n201,Smith, John,x\n", encoding="utf-8")
    loaded = load(folder)
    msgs = [(loaded.locate(p[1]), p[0], p[2]) for p in loaded.problems]
    assert any(loc == ("staff.csv", 1) and lvl == "error" and "both give the number" in m for loc, lvl, m in msgs)
    assert any(loc == ("staff.csv", 2) and lvl == "warning" and "more cells" in m for loc, lvl, m in msgs)


def test_freepbx_export_layout(tmp_path):
    folder = new_site(tmp_path)
    with open(os.path.join(DATA, "freepbx_extensions.csv"), "rb") as f:
        (folder / "staff.csv").write_bytes(f.read())
    loaded = load(folder)
    assert loaded.freepbx
    assert loaded.problems == []  # ~90 FreePBX columns, none of them "unknown"
    exts = {e["number"]: e for e in loaded.extensions}
    assert sorted(exts) == ["200", "201", "202", "203", "204", "205", "206"]
    assert exts["201"]["name"] == "Lily 王丽"
    assert exts["201"]["secret"] == "0b8e4c2d6f1a49e3b7d5c9a2e4f6b8d1"  # not the user password
    assert exts["202"]["mobile"] == "13800138002" and exts["202"]["follow_me"] == 25
    assert exts["203"]["mobile"] == "" and exts["203"]["follow_me"] == 0  # follow-me disabled
    assert exts["206"]["secret"] == "" and exts["206"]["mobile"] == "13900139006"
    assert exts["206"]["follow_me"] == 0  # virtual: no desk phone to ring first


def test_utf16_csv_is_named(tmp_path):
    folder = new_site(tmp_path)
    (folder / "staff.csv").write_bytes("number\tname\n201\t王丽\n".encode("utf-16"))
    loaded = load(folder)
    assert loaded.fatal
    (problem,) = loaded.problems
    assert "UTF-16" in problem[2] and "CSV UTF-8" in problem[2]


def test_non_utf8_toml(tmp_path):
    folder = new_site(tmp_path)
    line = line_of(folder / "site.toml", "Shanghai Office 上海")
    text = (folder / "site.toml").read_text(encoding="utf-8")
    (folder / "site.toml").write_bytes(text.encode("gb18030"))
    loaded = load(folder)
    assert loaded.fatal
    (problem,) = loaded.problems
    assert loaded.locate(problem[1]) == ("site.toml", line)
    assert "GBK" in problem[2]


def test_toml_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    folder = new_site(tmp_path)
    with open(folder / "site.toml", "ab") as f:
        f.write(b"# padding\n" * 120000)
    started = time.monotonic()
    loaded = load(folder)
    assert time.monotonic() - started < 1
    assert loaded.fatal and "too big" in loaded.problems[0][2]
    monkeypatch.setattr(sitefiles, "MAX_TOML_BYTES", 4 * 1024 * 1024)  # a limit users can raise
    assert not load(folder).fatal


def test_deeply_nested_toml_is_a_problem_not_a_crash(tmp_path):
    (tmp_path / "site.toml").write_text("a = " + "[" * 50000, encoding="utf-8")
    loaded = load(tmp_path)
    assert loaded.fatal and loaded.problems[0][0] == "error"


def test_load_accepts_the_toml_file_and_a_custom_csv_name(tmp_path):
    folder = new_site(tmp_path)
    os.mkdir(folder / "people")
    os.rename(folder / "staff.csv", folder / "people" / "branch staff.csv")
    edit(folder / "site.toml", 'file = "staff.csv"', 'file = "people/branch staff.csv"')
    loaded = load(folder / "site.toml")
    assert loaded.problems == [] and len(loaded.extensions) == 12
    assert loaded.locate(("staff", 0, "name")) == ("people/branch staff.csv", 2)


def test_audio_problems_point_at_the_audio_key(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "[menus.closed]\n", '[menus.closed]\naudio = "closed.wav"\n')
    loaded = load(folder)
    (problem,) = sitefiles.audio_problems(loaded, loaded.site_raw)
    assert loaded.locate(problem[1]) == ("site.toml", line_of(folder / "site.toml", "closed.wav"))
    (folder / "closed.wav").write_bytes(b"RIFF")
    assert sitefiles.audio_problems(loaded, loaded.site_raw) == []


def test_schema_problems_locate_to_their_lines(tmp_path):
    from zongji.site import schema

    folder = new_site(tmp_path)
    edit(folder / "site.toml", "port = 5070", 'port = "5070"')
    edit(folder / "site.toml", "retries = 0", "retires = 0")
    loaded = load(folder)
    _, problems = schema.normalize(loaded.site_raw)
    where = {loaded.locate(p[1]) for p in problems}
    assert where == {
        ("site.toml", line_of(folder / "site.toml", 'port = "5070"')),
        ("site.toml", line_of(folder / "site.toml", "retires = 0")),
    }
