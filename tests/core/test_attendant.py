from _sites import EVENING, HOLIDAY, OPEN, STAFF, WORKDAY_SAT, build, raw_site
from zongji.call.attendant import Attendant


def kinds(actions):
    return [a[0] for a in actions]


def transfers(actions):
    return [a[1] for a in actions if a[0] == "transfer"]


def call(tm=OPEN, site=None, entry=None):
    a = Attendant(site or build(), tm, entry)
    return a, a.start(0)


def test_open_hours_play_main_menu_and_wait():
    a, out = call()
    assert out[0] == ("menu", "main")
    assert out[1][0] == "play" and "Sales press 1" in out[1][2]
    assert a.deadline == 5000 and not a.done


def test_key_puts_caller_through_to_group():
    a, _ = call()
    out = a.key("1", 100)
    # "1" is an option; no short number starts with 1, so it is taken at once
    assert transfers(out) == [("group", "600")]
    assert a.done


def test_nested_menu_and_back():
    a, _ = call()
    out = a.key("2", 100)
    # "2" is an option but also starts 201...: the attendant waits the inter-digit time
    assert out == [] and a.deadline == 100 + 3000
    out = a.timer(3100)
    assert ("menu", "support") in out
    out = a.key("*", 3200)
    assert ("menu", "main") in out
    a.key("2", 3300)
    a.timer(6300)
    assert transfers(a.key("1", 6400)) == [("ext", "203")]


def test_dialing_an_extension_from_the_menu():
    a, _ = call()
    a.key("2", 100)
    a.key("0", 200)
    out = a.key("2", 300)
    assert transfers(out) == [("ext", "202")]
    assert "Lily" in [x for x in out if x[0] == "play"][0][2]


def test_hash_ends_an_ambiguous_entry_at_once():
    a, _ = call()
    a.key("2", 100)
    out = a.key("#", 200)
    assert ("menu", "support") in out


def test_timeouts_repeat_then_go_to_the_operator():
    a, out = call()
    out = a.timer(5000)
    assert ("menu", "main") in out  # retry 1
    out = a.timer(10000)
    assert ("menu", "main") in out  # retry 2
    out = a.timer(15000)
    assert transfers(out) == [("ext", "200")]


def test_timer_before_deadline_does_nothing():
    a, _ = call()
    assert a.timer(4999) == []
    assert not a.done


def test_prompt_done_restarts_the_reply_timeout():
    a, _ = call()
    a.prompt_done(8000)
    assert a.deadline == 13000


def test_invalid_keys_count_against_retries():
    a, _ = call()
    out = a.key("#", 100)
    assert out[0][1] == "invalid"
    a.key("#", 200)
    out = a.key("#", 300)
    assert transfers(out) == [("ext", "200")]


def test_closed_hours_route_and_holidays():
    for tm in (EVENING, HOLIDAY):
        a, out = call(tm)
        assert out[0] == ("menu", "closed"), tm
    a, out = call(WORKDAY_SAT)
    assert out[0] == ("menu", "main")


def test_closed_menu_timeout_hangs_up():
    a, out = call(EVENING)
    out = a.timer(5000)
    assert kinds(out)[-1] == "hangup"
    assert a.done


def test_did_entry_target():
    a, out = call(entry="201")
    assert transfers(out) == [("ext", "201")]


def test_dial_by_name_unique_match_transfers():
    a, _ = call()
    out = a.key("9", 100)
    assert ("menu", "directory") in out
    out = a.key("5", 200) + a.key("6", 300)  # j-o: not enough letters yet
    assert transfers(out) == []
    out = a.key("4", 400)  # j-o-h: only John Smith matches
    assert transfers(out) == [("ext", "204")]
    assert a.done and a.key("6", 500) == []


def test_dial_by_name_chinese_pinyin_several_matches_then_pick():
    a, _ = call()
    a.key("9", 100)
    out = a.key("9", 200)
    out = a.key("2", 300)
    assert out == []  # fewer than name_min_keys: keep listening
    out = a.key("6", 400)  # w-a-n: 王小明, Lily 王丽, 王芳, Wang Wei
    assert out == [] and a.deadline == 400 + 3000  # the caller may be typing on
    out = a.timer(3400)  # a pause: the matches are read out
    picks = [x for x in out if x[0] == "play"]
    assert len(picks) == 4 and "王小明" in picks[0][2] and picks[3][2].endswith("4.")
    out = a.key("3", 500)
    assert transfers(out) == [("ext", "205")]


def test_dial_by_name_too_many_matches_waits_for_more_keys():
    rows = STAFF + [
        [str(300 + i), "Wang %d" % i, "", "secret-%d-xx" % i, "", "staff", 0, "", "9264"] for i in range(12)
    ]
    a, _ = call(site=build(rows=rows))
    a.key("9", 100)
    for k in "926":
        out = a.key(k, 200)
    assert out == []  # too many to read out: the caller may type on
    out = a.key("#", 300)
    assert out[0][1] == "dbn_many"


def test_dial_by_name_no_match_then_operator():
    a, _ = call()
    a.key("9", 100)
    for attempt in range(3):
        for k in "777":  # p/q/r/s: nobody's name starts so
            out = a.key(k, 200)
        assert out[0][1] == "dbn_none"
    assert transfers(out) == [("ext", "200")]


def test_transfer_failure_falls_back_to_operator_once():
    a, _ = call()
    out = a.key("1", 100)
    out = a.transfer_failed(20000)
    assert transfers(out) == [("ext", "200")]
    out = a.transfer_failed(40000)
    assert kinds(out)[-1] == "hangup"


def test_menu_options_hangup_says_goodbye():
    a, _ = call()
    a.key("2", 100)
    a.timer(3100)
    out = a.key("#", 3200)
    assert out[0][1] == "goodbye" and out[-1] == ("hangup", "menu")


def test_chinese_language_prompts():
    raw = raw_site()
    raw["branch"]["language"] = "zh"
    a, _ = call(site=build(raw))
    out = a.key("#", 100)
    assert out[0][2] == "对不起，您的选择无效。"
