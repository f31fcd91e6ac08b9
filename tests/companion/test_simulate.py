"""`zongji simulate` and `zongji bundle` through the real CLI on the example branch."""

import json

from _sitedirs import edit, new_site, run

OPEN = "2026-11-25 10:30"  # a Wednesday morning
CLOSED = "2026-11-27 20:30"  # a Friday evening
MAIN_DID = "02155550100"


def sim_json(*args):
    result = run("simulate", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_caller_presses_1_and_sales_rings_all(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--call", MAIN_DID, "--keys", "1", "--at", OPEN)
    # the attendant answers the main number; 1 puts the caller through to sales, which rings all
    assert out["outcome"] == "transfer" and out["target"] == ["group", "600"]
    assert out["attendant"] == {"outcome": "transfer", "target": ["group", "600"]}
    assert out["decision"]["action"] == "attend" and out["decision"]["note"] == "the attendant answers"
    assert [leg for stage in out["ring"] for leg in stage["legs"]] == [
        ["desk", "201"],
        ["desk", "202"],
        ["desk", "203"],
    ]
    # a switch without media would ring the operator instead: the decision says so too
    assert out["decision"]["stand_in"]["target"] == ["ext", "200"]
    kinds = [s["kind"] for s in out["steps"]]
    assert kinds[:2] == ["call", "attend"] and kinds.index("connect") > kinds.index("transfer") > kinds.index("menu")


def test_human_output_tells_the_story(tmp_path):
    site = new_site(tmp_path)
    result = run("simulate", site, "--call", MAIN_DID, "--keys", "1", "--at", OPEN)
    assert result.exit_code == 0, result.output
    assert "enters menu 'main'" in result.output
    assert "For sales, press 1" in result.output
    assert "caller presses 1" in result.output
    assert "ring group 600 Sales 销售" in result.output
    assert "the attendant answers" in result.output
    assert result.output.strip().endswith("result: transfer to group 600")


def test_nested_menu_then_extension_dialed_in_it(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--call", MAIN_DID, "--keys", "2205", "--at", OPEN)
    menus = [s["menu"] for s in out["steps"] if s["kind"] == "menu"]
    assert menus == ["main", "support"]
    assert out["attendant"]["target"] == ["ext", "205"] and out["target"] == ["ext", "205"]


def test_closed_hours_play_the_closed_menu_then_hang_up(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--call", MAIN_DID, "--at", CLOSED)
    assert [s["menu"] for s in out["steps"] if s["kind"] == "menu"] == ["closed"]
    assert out["attendant"]["outcome"] == "hangup" and out["outcome"] == "hangup"
    assert out["decision"]["note"].startswith("outside opening hours")


def test_holiday_is_closed_and_makeup_saturday_open(tmp_path):
    site = new_site(tmp_path)

    def first_menu(at):
        return next(s["menu"] for s in sim_json(site, "--call", MAIN_DID, "--at", at)["steps"] if s["kind"] == "menu")

    assert first_menu("2026-10-02 10:00") == "closed"
    assert first_menu("2026-10-10 10:00") == "main"


def test_silent_caller_reaches_the_operator(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--call", MAIN_DID, "--at", OPEN)
    plays = [s for s in out["steps"] if s["kind"] == "menu"]
    assert len(plays) == 3  # the greeting and its two retries
    assert out["attendant"]["target"] == ["ext", "200"]
    assert out["steps"][-1]["t"] == 15.0  # three 5 s timeouts: the greeting and two retries


def test_did_straight_to_in_order_group(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--call", "02155550101", "--at", OPEN)
    assert out["target"] == ["group", "601"]
    assert [r["legs"] for r in out["ring"]] == [[["desk", "204"]], [["desk", "205"]], [["desk", "206"]]]


def test_dial_by_name_in_pinyin(tmp_path):
    site = new_site(tmp_path)
    # 9 = directory; z-h-a-o = 9426 also starts zhang wei and wang xiao-ming's "xiao": three
    # names match, so after a pause they are read out and the caller picks one
    out = sim_json(site, "--call", MAIN_DID, "--keys", "99426.3", "--at", OPEN)
    plays = [s["text"] for s in out["steps"] if s.get("prompt") == "dbn_choice"]
    assert len(plays) == 3 and "赵敏" in plays[2]
    assert out["attendant"]["target"] == ["ext", "206"]
    # initials work too: z-m = 96, then '#'
    out = sim_json(site, "--call", MAIN_DID, "--keys", "996#", "--at", OPEN)
    assert out["attendant"]["target"] == ["ext", "206"]
    # w-a-n-g then '#': Lily 王丽, 王小明 and 刘洋 (liu *yang*) are read out; 2 picks 王小明
    out = sim_json(site, "--call", MAIN_DID, "--keys", "99264#2", "--at", OPEN)
    plays = [s["text"] for s in out["steps"] if s.get("prompt") == "dbn_choice"]
    assert len(plays) == 3 and "王小明" in plays[1]
    assert out["attendant"]["target"] == ["ext", "202"]


def test_staff_call_by_short_number(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--from", "201", "--dial", "202")
    assert out["target"] == ["ext", "202"]
    # 王小明 has follow-me: desk for 20 s, then the mobile over the trunk
    assert out["ring"] == [
        {"legs": [["desk", "202"]], "seconds": 20},
        {"legs": [["trunk", "13800138002"]], "seconds": None},
    ]


def test_mobile_only_colleague(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--from", "201", "--dial", "210")
    assert out["ring"] == [{"legs": [["trunk", "13900139010"]], "seconds": None}]


def test_class_of_service_refuses_toll_calls(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--from", "209", "--dial", "013800138000")
    assert out["outcome"] == "refused"
    assert out["steps"][-1]["status"] == 403
    out = sim_json(site, "--from", "202", "--dial", "013800138000")
    assert out["outcome"] == "ring" and out["target"] == ["external", "13800138000", "mobile"]
    out = sim_json(site, "--from", "202", "--dial", "00044207946000")
    assert out["outcome"] == "refused"


def test_international_asks_a_managers_pin(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--from", "201", "--dial", "000442079460000")
    assert [s["kind"] for s in out["steps"]][:3] == ["call", "wait", "attend"]
    assert out["decision"]["wanted"] == ["pin", "international"]
    assert out["outcome"] == "hangup" and out["ring"] == []  # a caller who types nothing is hung up
    # the right PIN (zongji init gave 201 one in staff.csv) puts the call out over the trunk
    pin = [ln.split(",")[7] for ln in (site / "staff.csv").read_text().splitlines() if ln.startswith("201,")][0]
    out = sim_json(site, "--from", "201", "--dial", "000442079460000", "--keys", pin + "#")
    assert out["outcome"] == "transfer" and out["target"] == ["external", "00442079460000", "international"]
    assert out["ring"] == [{"legs": [["trunk", "00442079460000"]], "seconds": None}]
    # three wrong ones: counted, then the attendant hangs up, and nothing rings
    out = sim_json(site, "--from", "201", "--dial", "000442079460000", "--keys", "1111#2222#3333#")
    assert out["outcome"] == "hangup" and out["ring"] == []
    assert [s["kind"] for s in out["steps"]].count("pin") == 3


def test_emergency_always_goes_out(tmp_path):
    site = new_site(tmp_path)
    out = sim_json(site, "--from", "209", "--dial", "110")
    assert out["target"] == ["emergency", "110"]


def test_unknown_and_incomplete_numbers(tmp_path):
    site = new_site(tmp_path)
    assert sim_json(site, "--from", "201", "--dial", "299")["steps"][-1]["status"] == 404
    assert sim_json(site, "--from", "201", "--dial", "20")["steps"][-1]["status"] == 484


def test_bad_arguments_are_usage_errors(tmp_path):
    site = new_site(tmp_path)
    assert run("simulate", site, "--from", "201").exit_code == 2
    assert run("simulate", site, "--call", "1", "--keys", "12x").exit_code == 2
    result = run("simulate", site, "--call", "1", "--at", "tomorrow")
    assert result.exit_code == 2 and "YYYY-MM-DD HH:MM" in result.output


def test_simulate_refuses_a_broken_site(tmp_path):
    site = new_site(tmp_path)
    edit(site / "site.toml", '"1" = "600"', '"1" = "699"')
    result = run("simulate", site, "--call", MAIN_DID)
    assert result.exit_code == 1
    assert "site.toml:" in result.output and "699" in result.output


def test_bundle_round_trip_and_canonical(tmp_path):
    site = new_site(tmp_path)
    out1 = tmp_path / "a.zjb"
    out2 = tmp_path / "b.zjb"
    r1 = run("bundle", site, "-o", out1, "--json")
    r2 = run("bundle", site, "-o", out2, "--json")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output
    info = json.loads(r1.output)
    assert info["extensions"] == 12 and len(info["version"]) == 64
    assert out1.read_bytes() == out2.read_bytes()
    from zongji.site import bundle

    loaded = bundle.load(out1.read_bytes())
    assert loaded.version == info["version"]
    assert loaded.extension("202").name == "王小明"
    edit(site / "site.toml", "timeout = 5", "timeout = 6")
    r3 = run("bundle", site, "-o", out2, "--json")
    assert json.loads(r3.output)["version"] != info["version"]


def test_bundle_default_output_and_human_line(tmp_path):
    site = new_site(tmp_path)
    result = run("bundle", site)
    assert result.exit_code == 0, result.output
    assert (site / "site.zjb").exists()
    assert "12 extensions" in result.output


def test_interactive_session_reads_keys_line_by_line(tmp_path):
    site = new_site(tmp_path)
    from click.testing import CliRunner
    from zongji_companion.cli import main

    # the caller presses 2 (support), waits once (Enter alone), then dials 205
    result = CliRunner().invoke(
        main, ["simulate", str(site), "-i", "--call", MAIN_DID, "--at", OPEN], input="2\n\n205\n"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("caller presses 2") < out.index("enters menu 'support'")
    assert "puts the caller through to extension 205" in out
    assert out.count("enters menu 'support'") == 2  # the wait replayed the support menu
    assert out.count("enters menu 'main'") == 1  # the menus are played live, not previewed first
    assert out.strip().endswith("result: transfer to ext 205")


def test_interactive_quit_hangs_up(tmp_path):
    site = new_site(tmp_path)
    from click.testing import CliRunner
    from zongji_companion.cli import main

    result = CliRunner().invoke(main, ["simulate", str(site), "-i", "--at", OPEN], input="q\n")
    assert result.exit_code == 0, result.output
    assert "caller hangs up" in result.output and result.output.strip().endswith("result: hangup")


def test_simulate_says_when_the_switch_anchors_a_call_for_the_branchs_sounds(tmp_path):
    # the same rule the switch applies (decision.anchored): an outside caller's call that rings
    # goes through the switch's user agent once the ringback or hold sound is built
    site = new_site(tmp_path)
    edit(site / "site.toml", '# [sounds]\n# ringback = "sounds/ringback.wav"\n# hold = "sounds/hold.mp3"',
         '[sounds]\nringback = "sounds/ringback.wav"\nhold = "sounds/hold.mp3"')  # fmt: skip
    (site / "sounds").mkdir()
    for name in ("ringback.wav", "hold.mp3"):  # the recordings (check only wants them there)
        (site / "sounds" / name).write_bytes(b"RIFF")
    out = sim_json(site, "--call", "02155550101", "--at", OPEN)  # a DID that rings group 601
    notes = [s["text"] for s in out["steps"] if s["kind"] == "note"]
    assert any("not built yet" in n and "proxied" in n for n in notes), notes
    assert "anchor" not in [s["kind"] for s in out["steps"]]

    (site / "prompts").mkdir()
    (site / "prompts" / "sound.ringback.ulaw").write_bytes(b"\xff" * 1600)  # as `zongji prompts build` writes it
    out = sim_json(site, "--call", "02155550101", "--at", OPEN)
    anchor = [s for s in out["steps"] if s["kind"] == "anchor"]
    assert len(anchor) == 1 and "early media" in anchor[0]["text"] and "ringback file" in anchor[0]["text"]
    assert "hold music" not in anchor[0]["text"]  # hold.mp3 is not built
    # staff calling a colleague are not anchored; calling out, only for hold music
    out = sim_json(site, "--from", "201", "--dial", "202", "--at", OPEN)
    assert "anchor" not in [s["kind"] for s in out["steps"]]
    out = sim_json(site, "--from", "201", "--dial", "013800138000", "--at", OPEN)
    assert "anchor" not in [s["kind"] for s in out["steps"]]
    (site / "prompts" / "sound.hold.ulaw").write_bytes(b"\xff" * 1600)
    out = sim_json(site, "--from", "201", "--dial", "013800138000", "--at", OPEN)
    anchor = [s for s in out["steps"] if s["kind"] == "anchor"]
    assert len(anchor) == 1 and "outside party hears the branch's hold music" in anchor[0]["text"]
