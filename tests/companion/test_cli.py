"""`zongji init` and `zongji check` through the real command line."""

import json
import os
import subprocess
import sys
import time

from _sitedirs import edit, line_of, new_site, run
from zongji_companion import sitefiles

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def errors_in(output):
    return [line for line in output.splitlines() if ": error: " in line]


# ---------------------------------------------------------------- init


def test_init_writes_a_site_and_says_what_next(tmp_path):
    result = run("init", tmp_path / "shanghai")
    assert result.exit_code == 0
    assert (tmp_path / "shanghai" / "site.toml").is_file()
    assert (tmp_path / "shanghai" / "staff.csv").is_file()
    assert "next: zongji check" in result.output


def test_init_gives_every_site_its_own_secrets(tmp_path):
    a = new_site(tmp_path, "a")
    b = new_site(tmp_path, "b")
    secrets_a = {e["secret"] for e in sitefiles.load(a).extensions if e["secret"]}
    secrets_b = {e["secret"] for e in sitefiles.load(b).extensions if e["secret"]}
    assert len(secrets_a) == 11 and not secrets_a & secrets_b
    assert all(len(s) >= 16 and s.isalnum() for s in secrets_a)


def test_init_example_is_the_branch_described(tmp_path):
    loaded = sitefiles.load(new_site(tmp_path))
    assert loaded.problems == []
    raw = loaded.site_raw
    assert raw["branch"]["country"] == "CN" and raw["branch"]["timezone"] == "Asia/Shanghai"
    exts = {e["number"]: e for e in loaded.extensions}
    assert len(exts) == 12 and "200" in exts
    assert any(not e["secret"] and e["mobile"] for e in exts.values())  # a mobile-only colleague
    assert any(e["follow_me"] for e in exts.values())
    assert {g["strategy"] for g in raw["groups"].values()} == {"ring-all", "in-order"}
    assert raw["trunk"]["host"] == "127.0.0.1" and raw["trunk"]["port"] == 5070
    assert "international" in raw["dialout"]["classes"]["manager"]["pin"]


def test_init_refuses_a_non_empty_folder(tmp_path):
    folder = new_site(tmp_path)
    (folder / "site.toml").write_text("# mine\n", encoding="utf-8")
    result = run("init", folder)
    assert result.exit_code == 1
    assert "not empty" in result.output and "--force" in result.output
    assert (folder / "site.toml").read_text(encoding="utf-8") == "# mine\n"
    assert run("init", "--force", folder).exit_code == 0
    assert "[branch]" in (folder / "site.toml").read_text(encoding="utf-8")


def test_init_accepts_a_folder_that_holds_only_a_git_repository(tmp_path):
    folder = tmp_path / "branch"
    subprocess.run(["git", "init", "-q", str(folder)], check=True, timeout=60)
    (folder / "README.md").write_text("# our branch\n", encoding="utf-8")
    (folder / ".gitignore").write_text("*.bak", encoding="utf-8")  # no final newline
    result = run("init", folder)
    assert result.exit_code == 0, result.output
    assert (folder / "site.toml").is_file()
    assert (folder / "README.md").read_text(encoding="utf-8") == "# our branch\n"
    ignored = (folder / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ignored[0] == "*.bak" and "*.zjb" in ignored and ".zongji-state/" in ignored
    assert "added *.zjb, .zongji-state/ to %s" % (folder / ".gitignore") in result.output


def test_init_refuses_a_folder_with_other_files_and_says_which(tmp_path):
    folder = tmp_path / "branch"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    result = run("init", folder)
    assert result.exit_code == 1
    assert "is not empty (it holds notes.txt)" in result.output and "--force" in result.output
    assert not (folder / "site.toml").exists()


def test_init_writes_a_gitignore_for_bundles_and_state(tmp_path):
    folder = new_site(tmp_path)
    lines = (folder / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "*.zjb" in lines and ".zongji-state/" in lines
    subprocess.run(["git", "init", "-q", str(folder)], check=True, timeout=60)
    assert run("bundle", folder).exit_code == 0
    (folder / ".zongji-state").mkdir()
    (folder / ".zongji-state" / "cdr.jsonl").write_text("", encoding="utf-8")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "site.toml" in status and "staff.csv" in status
    assert "site.zjb" not in status and ".zongji-state" not in status
    assert run("init", "--force", folder).exit_code == 0  # nothing added twice
    assert (folder / ".gitignore").read_text(encoding="utf-8").splitlines() == lines


def test_init_then_check_is_clean(tmp_path):
    folder = new_site(tmp_path)
    result = run("check", folder)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    # the one warning: no prompt files yet (tests/companion/test_prompts.py builds them)
    assert len(lines) == 2 and ": warning: no prompt files yet" in lines[0]
    assert lines[1] == "site OK with 1 warning: 12 extensions, 2 groups, 3 menus"


# ---------------------------------------------------------------- check: bad input, exact lines


def test_malformed_toml_names_the_line_and_how_to_fix(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'username = "shanghai"', "username = shanghai")
    line = line_of(folder / "site.toml", "username = shanghai")
    result = run("check", folder)
    assert result.exit_code == 1
    (err,) = errors_in(result.output)
    assert err.startswith("site.toml:%d: error: " % line)
    assert "quotes" in err
    assert "Traceback" not in result.output


def test_missing_closing_quote(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'name = "Sales 销售"', 'name = "Sales 销售')
    result = run("check", folder)
    assert result.exit_code == 1
    assert "site.toml:%d: error: " % line_of(folder / "site.toml", '"Sales 销售') in result.output
    assert "closing quote" in result.output


def test_wrong_type_points_at_the_key(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "port = 5070", 'port = "5070"')
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "site.toml", 'port = "5070"')
    assert "site.toml:%d: error: 'port' in [trunk] must be a whole number" % line in result.output


def test_unknown_key_suggests_the_right_one(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "member_timeout = 15", "member_timout = 15")
    result = run("check", folder)
    line = line_of(folder / "site.toml", "member_timout")
    assert result.exit_code == 1
    assert "site.toml:%d: error:" % line in result.output
    assert "did you mean 'member_timeout'" in result.output


def test_non_utf8_csv_names_the_line_of_the_bad_byte(tmp_path):
    folder = new_site(tmp_path)
    text = (folder / "staff.csv").read_text(encoding="utf-8-sig")
    (folder / "staff.csv").write_bytes(text.encode("gb18030"))  # Excel's "CSV" on Chinese Windows
    result = run("check", folder)
    assert result.exit_code == 1
    (err,) = errors_in(result.output)
    assert err.startswith("staff.csv:2: error: not UTF-8")  # line 1 is ASCII, 陈静 is on line 2
    assert "CSV UTF-8" in err and "byte offset" in err


def test_non_utf8_deep_in_the_file(tmp_path):
    folder = new_site(tmp_path)
    rows = ["number,name,secret"] + ["%d,Person %d,secret-%06d" % (300 + i, i, i) for i in range(40)]
    data = ("\n".join(rows) + "\n").encode() + "399,Zoë\n".encode("latin-1")
    (folder / "staff.csv").write_bytes(data)
    result = run("check", folder)
    assert result.exit_code == 1
    assert "staff.csv:42: error: not UTF-8: byte 0xEB" in result.output


def test_csv_with_bom_is_accepted(tmp_path):
    folder = new_site(tmp_path)
    raw = (folder / "staff.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # init writes the BOM Excel needs
    assert run("check", folder).exit_code == 0
    (folder / "staff.csv").write_bytes(raw[3:])
    assert run("check", folder).exit_code == 0


def test_freepbx_export_is_accepted(tmp_path):
    folder = new_site(tmp_path)
    with open(os.path.join(DATA, "freepbx_extensions.csv"), "rb") as f:
        (folder / "staff.csv").write_bytes(f.read())
    edit(folder / "site.toml", 'default_class = "internal"', 'default_class = "staff"')
    result = run("check", folder)
    assert result.exit_code == 0, result.output
    assert "7 extensions" in result.output


def test_fifty_megabyte_csv_is_refused_fast(tmp_path):
    folder = new_site(tmp_path)
    block = "".join("%d,Person %d,secret-%08d\n" % (10000 + i, i, i) for i in range(1000)).encode()
    with open(folder / "staff.csv", "wb") as f:
        f.write(b"number,name,secret\n")
        f.write(block * (50 * 1024 * 1024 // len(block) + 1))
    assert os.path.getsize(folder / "staff.csv") > 50 * 1024 * 1024
    started = time.monotonic()
    result = run("check", folder)
    took = time.monotonic() - started
    assert result.exit_code == 1
    assert "staff.csv:1: error: staff.csv is too big: 50.0 MB" in result.output
    assert took < 2.0


def test_too_many_rows(tmp_path):
    folder = new_site(tmp_path)
    rows = "".join("%d,P%d\n" % (100000 + i, i) for i in range(sitefiles.MAX_CSV_ROWS + 1))
    (folder / "staff.csv").write_text("number,name\n" + rows, encoding="utf-8")
    result = run("check", folder)
    assert result.exit_code == 1
    assert "staff.csv:%d: error:" % (sitefiles.MAX_CSV_ROWS + 2) in result.output
    assert "more than 20000 rows" in result.output


def test_missing_csv_column(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "staff.csv", "number,name,", "number,nmae,")
    result = run("check", folder)
    assert result.exit_code == 1
    assert "staff.csv:1: warning: unknown column 'nmae' is ignored: did you mean 'name'?" in result.output
    assert "staff.csv:1: error: the header row has no 'name' column" in result.output


def test_missing_staff_file(tmp_path):
    folder = new_site(tmp_path)
    os.remove(folder / "staff.csv")
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "site.toml", 'file = "staff.csv"')
    assert "site.toml:%d: error: staff file 'staff.csv' not found" % line in result.output


def test_bad_follow_me_points_at_its_csv_line(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "staff.csv", "13800138002,staff,20,", "13800138002,staff,20s,")
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "staff.csv", "20s")
    (err,) = errors_in(result.output)
    assert err.startswith("staff.csv:%d: error: follow_me '20s'" % line)


def test_missing_audio_file(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "[menus.closed]\n", '[menus.closed]\naudio = "prompts/closed.wav"\n')
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "site.toml", "prompts/closed.wav")
    assert "site.toml:%d: error: audio file 'prompts/closed.wav'" % line in result.output
    (folder / "prompts").mkdir()
    (folder / "prompts" / "closed.wav").write_bytes(b"RIFF")
    assert run("check", folder).exit_code == 0


def test_menu_tree_a_hundred_levels_deep(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", '"2" = "menu:support"', '"2" = "menu:level1"')
    deep = []
    for i in range(1, 101):
        nxt = '"menu:level%d"' % (i + 1) if i < 100 else '"operator"'
        deep.append('[menus.level%d]\nprompt = "level %d"\noptions = { "1" = %s, "*" = "back" }\n' % (i, i, nxt))
    with open(folder / "site.toml", "a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(deep))
    started = time.monotonic()
    result = run("check", folder)
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    line = line_of(folder / "site.toml", "[menus.level100]")
    assert "site.toml:%d: error: menu 'level100'" % line in result.output
    assert "levels below the main menu" in result.output


# ---------------------------------------------------------------- check: output and exit codes


def test_warnings_alone_exit_zero_and_sort_by_file_then_line(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'pin = ["international"]', "pin = []")  # toll-fraud warning
    with open(folder / "staff.csv", "a", encoding="utf-8") as f:
        f.write("212,短密码,Admin,short,,,,\n")  # a weak secret: a warning at the CSV's last line
    result = run("check", folder)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    problems = [ln for ln in lines if ": warning: " in ln]
    assert len(problems) >= 2
    keys = [(p.split(":")[0], int(p.split(":")[1])) for p in problems]
    assert keys == sorted(keys)
    assert lines[-1].startswith("site OK with %d warning" % len(problems))


def test_json_output(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'target = "200"', 'target = "299"')
    result = run("check", "--json", folder)
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["ok"] is False and out["errors"] >= 1
    p = out["problems"][0]
    assert set(p) == {"file", "line", "level", "message"}
    assert p["file"] == "site.toml" and p["line"] == line_of(folder / "site.toml", '"299"')


def test_json_output_for_unreadable_site(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "[trunk]", "[trunk")
    result = run("check", "--json", folder)
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["errors"] == 1 and out["problems"][0]["line"] == line_of(folder / "site.toml", "[trunk")


def test_check_of_a_folder_without_a_site(tmp_path):
    result = run("check", tmp_path)
    assert result.exit_code == 1
    assert "site.toml:1: error: no site.toml" in result.output
    assert "zongji init" in result.output


def test_usage_error_exits_two():
    assert run("check", "--bogus").exit_code == 2


def test_unexpected_exception_is_one_line_and_exit_three(tmp_path, monkeypatch):
    def boom(path):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(sitefiles, "check_site", boom)
    monkeypatch.delenv("ZONGJI_DEBUG", raising=False)
    result = run("check", tmp_path)
    assert result.exit_code == 3
    assert "zongji: internal error: RuntimeError: kaboom" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- the installed program


def _zongji(*args, cwd=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "zongji_companion"] + [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def test_python_m_version_and_help():
    out = _zongji("--version")
    assert out.returncode == 0 and "zongji" in out.stdout
    out = _zongji("--help")
    assert out.returncode == 0 and "init" in out.stdout and "check" in out.stdout


def test_installed_program_init_and_bad_check(tmp_path):
    out = _zongji("init", "branch", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    edit(tmp_path / "branch" / "site.toml", "[operator]", "[operator")
    out = _zongji("check", "branch", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.startswith("site.toml:%d: error:" % line_of(tmp_path / "branch" / "site.toml", "[operator"))
    assert out.stderr == ""


def test_installed_program_init_then_check(tmp_path):
    assert _zongji("init", "branch", cwd=tmp_path).returncode == 0
    out = _zongji("check", cwd=tmp_path / "branch")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "site OK" in out.stdout


# ---------------------------------------------------------------- check: hostile site files (issue 6 item 9)


def test_a_forty_thousand_part_key_is_refused_before_parsing(tmp_path):
    folder = new_site(tmp_path)
    with open(folder / "site.toml", "a", encoding="utf-8") as f:
        f.write("\n" + ".".join(["a"] * 40000) + " = 1\n")
    line = line_of(folder / "site.toml", "a.a.a")
    result = run("check", folder)  # took 52 s before the limit
    assert result.exit_code == 1
    (err,) = errors_in(result.output)
    assert err.startswith("site.toml:%d: error: this line is 80003 characters long" % line)
    assert "is this the right file?" in err


def test_a_key_with_too_many_parts_names_its_line(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "[trunk]", "[trunk]\n" + ".".join(["x"] * 200) + " = 1")
    line = line_of(folder / "site.toml", "x.x.x")
    result = run("check", folder)
    assert result.exit_code == 1
    (err,) = errors_in(result.output)
    assert err.startswith("site.toml:%d: error: this key has more than 16 dotted parts" % line)


def test_a_table_header_with_an_absurd_name(tmp_path):
    folder = new_site(tmp_path)
    with open(folder / "site.toml", "a", encoding="utf-8") as f:
        f.write('\n["%s"]\nprompt = "x"\n' % ("m" * 1000))
    result = run("check", folder)
    assert result.exit_code == 1
    assert (
        "site.toml:%d: error: this key has more than 16 dotted parts or 256 characters"
        % line_of(folder / "site.toml", "mmmm")
        in result.output
    )


def test_a_nul_in_the_staff_file_name_is_a_clear_error(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'file = "staff.csv"', 'file = "staff\\u0000.csv"')
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "site.toml", "staff\\u0000.csv")
    (err,) = errors_in(result.output)
    assert err.startswith("site.toml:%d: error: [staff] file contains a control character (NUL" % line)
    assert "internal error" not in result.output


def test_a_fifo_as_the_staff_file_is_refused_not_waited_on(tmp_path):
    folder = new_site(tmp_path)
    os.remove(folder / "staff.csv")
    os.mkfifo(folder / "staff.csv")
    out = _zongji("check", folder, timeout=60)  # hung forever before
    assert out.returncode == 1, out.stdout + out.stderr
    line = line_of(folder / "site.toml", 'file = "staff.csv"')
    assert "site.toml:%d: error: staff file 'staff.csv' is not a regular file (a pipe (FIFO))" % line in out.stdout


def test_dev_stdin_as_the_staff_file_is_refused(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'file = "staff.csv"', 'file = "/dev/stdin"')
    proc = subprocess.run(
        [sys.executable, "-m", "zongji_companion", "check", str(folder)],
        stdin=subprocess.PIPE,  # left open: reading it would wait for ever
        capture_output=False,
        stdout=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "staff file '/dev/stdin' is not a regular file" in proc.stdout


# ---------------------------------------------------------------- a closed stdout (zongji cdr | head -1)


def _with_closed_stdout(*args, cwd=None):
    """Run zongji with a stdout whose reader is already gone, as `| head -1` leaves it."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            [sys.executable, "-m", "zongji_companion"] + [str(a) for a in args],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=120,
        )
    finally:
        os.close(w)


def test_a_closed_pipe_ends_every_command_quietly(tmp_path):
    folder = new_site(tmp_path)
    commands = [
        ("--help",),
        ("check", folder),
        ("check", "--json", folder),
        ("cdr", folder),
        ("cdr", "--json", folder),
        ("bundle", folder),
        ("simulate", folder, "--call", "02155550100", "--keys", "2", "--at", "2026-11-27 10:00"),
        ("init", tmp_path / "other"),
    ]
    for args in commands:
        out = _with_closed_stdout(*args)
        assert out.returncode in (0, 1, 141), (args, out.returncode, out.stderr)
        assert out.stderr == "", (args, out.stderr)  # no "internal error: BrokenPipeError", no traceback
    assert _with_closed_stdout("cdr", folder).returncode == 141  # as a shell reports SIGPIPE


def test_cdr_into_head_prints_its_first_line(tmp_path):
    folder = new_site(tmp_path)
    out = subprocess.run(
        "%s -m zongji_companion cdr %s | head -1" % (sys.executable, folder),
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.startswith("no calls recorded in")
    assert out.stderr == ""


# ---------------------------------------------------------------- check: hints that save time (issue 7 item 7)


def test_a_duplicate_number_names_the_other_rows_line(tmp_path):
    folder = new_site(tmp_path)
    with open(folder / "staff.csv", "a", encoding="utf-8") as f:
        f.write("203,Copy 复制,Sales,another-secret-x,,staff,,\n")
    first = line_of(folder / "staff.csv", "203,张伟")
    dup = line_of(folder / "staff.csv", "203,Copy")
    result = run("check", folder)
    assert result.exit_code == 1
    (err,) = errors_in(result.output)
    assert err == (
        "staff.csv:%d: error: short number 203 is already used by extension 203 (张伟), on staff.csv:%d" % (dup, first)
    )


def test_a_group_reusing_an_extension_number_names_the_csv_line(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", "[groups.600]", "[groups.205]")
    result = run("check", folder)
    assert "already used by extension 205 (刘洋), on staff.csv:%d" % line_of(folder / "staff.csv", "205,") in (
        result.output
    )


def test_members_written_as_numbers_say_quote_them(tmp_path):
    folder = new_site(tmp_path)
    text = (folder / "site.toml").read_text(encoding="utf-8")
    start = text.index("members = [", text.index("[groups.600]"))
    end = text.index("]", start) + 1
    (folder / "site.toml").write_text(text[:start] + "members = [201, 202]" + text[end:], encoding="utf-8")
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "site.toml", "members = [201, 202]")
    assert "site.toml:%d: error: 'members' in [groups.600] must be" % line in result.output
    assert 'quote them, members = ["201", "202"]' in result.output


def test_a_menu_name_without_menu_prefix_suggests_it(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", '"2" = "menu:support"', '"2" = "support"')
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "site.toml", '"2" = "support"')
    assert "site.toml:%d: error: 'support' is not a target" % line in result.output
    assert 'write "menu:support"' in result.output


def test_a_mobile_with_spaces_says_remove_them(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "staff.csv", "13800138002,", "138 0013 8002,")
    result = run("check", folder)
    assert result.exit_code == 1
    line = line_of(folder / "staff.csv", "138 0013 8002")
    assert "staff.csv:%d: error: mobile '138 0013 8002' of extension 202" % line in result.output
    assert "remove the spaces, write 13800138002" in result.output


def test_a_mobile_excel_wrote_in_scientific_form_says_format_as_text(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "staff.csv", "13800138002,", "1.38001E+10,")
    result = run("check", folder)
    assert result.exit_code == 1
    (err,) = errors_in(result.output)
    assert err.startswith("staff.csv:%d: error: mobile '1.38001E+10'" % line_of(folder / "staff.csv", "1.38001E+10"))
    assert "digits after the first few were lost" in err and "format the column as Text" in err


def test_chinese_headers_are_recognised(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "staff.csv", "number,name,department,secret,mobile,", "分机号,姓名,部门,密码,手机,")
    result = run("check", folder)
    assert result.exit_code == 0, result.output
    assert "unknown column" not in result.output
    exts = {e["number"]: e for e in sitefiles.load(folder).extensions}
    assert exts["202"]["name"] == "王小明" and exts["202"]["mobile"] == "13800138002"
    assert exts["202"]["department"] == "Sales 销售" and len(exts["202"]["secret"]) == 16


def test_warnings_for_hours_provider_password_and_pins(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'workdays = ["2026-10-10"]', 'workdays = ["2026-10-10", "2026-10-03"]')
    edit(
        folder / "site.toml",
        'open = ["mon-fri 09:00-12:00,13:00-18:00"]',
        'open = ["mon-fri 09:00-12:00,13:00-18:00", "fri 17:00-20:00"]',
    )
    edit(folder / "site.toml", 'password = "test-provider-password"', 'password = ""')
    rows = (folder / "staff.csv").read_text(encoding="utf-8-sig").splitlines()
    pins = {"201": "1234", "204": "204", "207": "7777"}  # 204: too short, an error rather than a warning
    rows = [r.rsplit(",", 1)[0] + "," + pins[r[:3]] if r[:3] in pins else r for r in rows]
    (folder / "staff.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run("check", folder)
    out = result.output
    toml, csv = folder / "site.toml", folder / "staff.csv"
    assert (
        "site.toml:%d: warning: workday 2026-10-03 is also a holiday (2026-10-01..2026-10-07)"
        % line_of(toml, "workdays =")
        in out
    )
    assert (
        "site.toml:%d: warning: opening hours overlap on fri: 13:00-18:00 and 17:00-20:00" % line_of(toml, "open =")
        in out
    )
    assert "site.toml:%d: warning: the provider password is empty" % line_of(toml, 'password = ""') in out
    assert "staff.csv:%d: warning: PIN 1234 of extension 201" % line_of(csv, ",1234") in out
    assert "a straight run of digits" in out
    assert "staff.csv:%d: warning: PIN 7777 of extension 207" % line_of(csv, ",7777") in out
    assert "staff.csv:%d: error: PIN of extension 204 must be at least 4 digits" % line_of(csv, ",204") in out


# ---------------------------------------------------------------- help and docs name only what exists


def test_help_and_docs_name_only_commands_that_exist_and_document_all_of_them():
    import re

    from zongji_companion.cli import main

    commands = set(main.commands)
    assert {"init", "check", "simulate", "bundle", "run", "cdr", "provider"} <= commands
    named = set(re.findall(r"zongji ([a-z]\w*) ", run("--help").output))
    assert named <= commands, named - commands
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "docs", "cli.md"), encoding="utf-8") as f:
        cli_md = f.read()
    for name in commands:
        assert "\n## %s\n" % name in cli_md or "## %s\n" % name in cli_md, name
        assert "`zongji %s" % name in cli_md, name
        for option in main.commands[name].params:
            for opt in option.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in cli_md, "%s %s is not in docs/cli.md" % (name, opt)
    for path in ("README.md", "docs/cli.md", "docs/site-format.md"):
        with open(os.path.join(root, path), encoding="utf-8") as f:
            used = set(re.findall(r"`zongji (\w+)", f.read()))
        assert used <= commands, (path, used - commands)
    for name in commands:  # every command's help names only commands that exist
        named = set(re.findall(r"`?zongji ([a-z]\w*)[ `]", run(name, "--help").output))
        assert named <= commands, (name, named - commands)
