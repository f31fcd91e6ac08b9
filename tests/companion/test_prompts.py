"""`zongji prompts build` and what `zongji check` / `zongji bundle` say about prompts, through
the real command line with the real espeak-ng and sox."""

import json
import os
import shutil
import subprocess

import pytest
from _sitedirs import edit, line_of, new_site, run
from zongji_companion import promptfiles

IN_CI = os.environ.get("CI", "").lower() == "true"
RATE = 8000


def _missing(reason):
    if IN_CI:
        pytest.fail(reason + " (CI=true: the prompt tools are required)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _tools():
    for name in ("espeak-ng", "sox"):
        if shutil.which(name) is None:
            _missing("%s not installed (apt install %s)" % (name, name))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One example site with its prompts built, shared read-only by the tests that only look."""
    folder = new_site(tmp_path_factory.mktemp("built"))
    result = run("prompts", "build", "--json", folder)
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout)


def build(folder, *flags):
    result = run("prompts", "build", "--json", *flags, folder)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def manifest(folder):
    return json.loads((folder / "prompts" / "manifest.json").read_text(encoding="utf-8"))


def levels(path):
    """(seconds, peak dBFS, RMS dBFS) of a raw 8 kHz µ-law file, as sox reads it."""
    out = subprocess.run(
        ["sox", "-t", "ul", "-r", str(RATE), "-c", "1", str(path), "-n", "stats"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    got = {}
    for line in out.splitlines():
        key = line[:13].strip()
        if key in ("Pk lev dB", "RMS lev dB", "Length s"):
            got[key] = float(line[13:].split()[0])
    return got["Length s"], got["Pk lev dB"], got["RMS lev dB"]


def warnings_in(output):
    return [line for line in output.splitlines() if ": warning: " in line]


# ---------------------------------------------------------------- build


def test_build_makes_one_ulaw_file_per_prompt(built):
    folder, out = built
    ids = out["built"]
    assert "menu.main" in ids and "phrase.connecting.0" in ids and "digit.hash" in ids
    assert out["failed"] == [] and out["kept"] == [] and out["files"] == len(ids)
    entries = manifest(folder)["prompts"]
    assert sorted(entries) == sorted(ids)
    for pid in ids:
        entry = entries[pid]
        path = folder / entry["file"]
        data = path.read_bytes()
        assert len(data) == entry["bytes"] and entry["seconds"] == round(len(data) / RATE, 2)
        seconds, peak, rms = levels(path)
        assert 0.3 < seconds < 20, (pid, seconds)
        assert -4 < peak < -2, (pid, peak)  # normalised to -3 dBFS
        assert -35 < rms < -10, (pid, rms)  # speech, not silence or noise
        assert entry["source"] == "text" and entry["voice"] == "en"
    assert entries["menu.main"]["text"].startswith("Welcome to the Shanghai office")
    assert entries["menu.main"]["seconds"] > 5 > entries["digit.1"]["seconds"]


def test_check_is_clean_once_prompts_are_built(built):
    folder, _ = built
    result = run("check", folder)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "site OK: 12 extensions, 2 groups, 3 menus"


def test_rebuild_is_a_no_op(built):
    folder, _ = built
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "prompts").iterdir()}
    result = run("prompts", "build", folder)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("0 prompts built, 27 unchanged, 0 removed: 27 files")
    after = {p.name: p.stat().st_mtime_ns for p in (folder / "prompts").iterdir()}
    assert {k: v for k, v in after.items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"
    }


def test_progress_line_per_file(tmp_path):
    folder = new_site(tmp_path)
    edit(folder / "site.toml", 'language = "en"', 'language = "zh"')
    result = run("prompts", "build", folder)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "[1/26] prompts/menu.closed.ulaw (text, voice cmn)"
    assert lines[-1].startswith("26 prompts built, 0 unchanged")
    entries = manifest(folder)["prompts"]
    assert entries["phrase.dbn_choice.1"]["text"] == "请按" and "phrase.dbn_choice.0" not in entries
    assert entries["digit.1"]["text"] == "幺" and entries["digit.1"]["voice"] == "cmn"


# ---------------------------------------------------------------- stale, missing, unused


def test_changed_menu_text_is_stale_and_only_it_is_rebuilt(tmp_path):
    folder = new_site(tmp_path)
    build(folder)
    edit(folder / "site.toml", "Technical support.", "Technical support, 技术支持.")
    result = run("check", folder)
    assert result.exit_code == 0, result.output
    line = line_of(folder / "site.toml", "Technical support, ")
    (warning,) = warnings_in(result.output)
    assert warning.startswith(
        "site.toml:%d: warning: menu 'support': prompts/menu.support.ulaw is stale: the text changed" % line
    )
    assert warning.endswith("run `zongji prompts build %s`" % folder)
    out = build(folder)
    assert out["built"] == ["menu.support"] and len(out["kept"]) == 26
    assert run("check", folder).output.startswith("site OK:")


def test_missing_prompts_are_a_warning_and_say_so(tmp_path):
    folder = new_site(tmp_path)
    result = run("check", folder)
    assert result.exit_code == 0
    (warning,) = warnings_in(result.output)
    line = line_of(folder / "site.toml", "language =")
    assert warning.startswith("site.toml:%d: warning: no prompt files yet (27 prompts" % line)
    assert "plays silence" in warning and "a warning, not an error: calls are still routed" in warning
    build(folder)
    (folder / "prompts" / "digit.5.ulaw").unlink()
    (folder / "prompts" / "menu.main.ulaw").write_bytes(b"\xff" * 100)  # damaged
    out = json.loads(run("check", "--json", folder).output)
    got = [(p["line"], p["message"][:60]) for p in out["problems"]]
    assert out["ok"] and out["warnings"] == 2, got
    assert out["problems"][0]["message"].startswith("1 built-in prompt missing (digit.5)")
    damaged = "menu 'main': prompts/menu.main.ulaw is stale: the file was changed or damaged"
    assert damaged in out["problems"][1]["message"]
    assert build(folder)["built"] == ["menu.main", "digit.5"]


def test_language_change_makes_everything_stale_and_unused_files_go(tmp_path):
    folder = new_site(tmp_path)
    build(folder)
    (folder / "prompts" / "menu.gone.ulaw").write_bytes(b"\xff" * 800)
    edit(folder / "site.toml", 'language = "en"', 'language = "zh"')
    result = run("check", folder)
    text = result.output
    assert "23 built-in prompts stale" in text and "the voice changed (cmn, was en: [branch] language)" in text
    assert "prompts/manifest.json:1: warning: prompts/menu.gone.ulaw is no prompt of this site any more" in text
    assert "prompts/phrase.dbn_choice.0.ulaw is no prompt of this site any more" in text  # zh has no piece 0
    result = run("prompts", "build", folder)
    assert "removed prompts/menu.gone.ulaw: no prompt of the site uses it any more" in result.output
    assert not (folder / "prompts" / "phrase.dbn_choice.0.ulaw").exists()
    assert "phrase.dbn_choice.0" not in manifest(folder)["prompts"]
    assert len(build(folder, "--force")["built"]) == 26


# ---------------------------------------------------------------- recordings


def synth(path, seconds, freq):
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "2", "-b", "16", str(path), "synth", str(seconds), "sine", str(freq)],
        check=True,
    )


def test_a_recording_is_converted_and_its_change_seen(tmp_path):
    folder = new_site(tmp_path)
    build(folder)
    (folder / "audio").mkdir()
    synth(folder / "audio" / "closed.wav", 1.5, 440)
    edit(folder / "site.toml", "[menus.closed]\n", '[menus.closed]\naudio = "audio/closed.wav"\n')
    result = run("check", folder)
    line = line_of(folder / "site.toml", "audio/closed.wav")
    assert (
        "site.toml:%d: warning: menu 'closed': prompts/menu.closed.ulaw is stale: the menu has a recording now" % (line)
        in result.output
    )
    assert build(folder)["built"] == ["menu.closed"]
    entry = manifest(folder)["prompts"]["menu.closed"]
    assert entry["source"] == "recording" and entry["recording"] == "audio/closed.wav"
    assert entry["recording_sha256"] == promptfiles._sha256_file(folder / "audio" / "closed.wav")
    seconds, peak, _ = levels(folder / "prompts" / "menu.closed.ulaw")
    assert 1.5 < seconds < 1.8 and -4 < peak < -2  # the tone plus the 150 ms pause, normalised
    synth(folder / "audio" / "closed.wav", 1.0, 660)
    result = run("check", folder)
    assert "the recording audio/closed.wav changed after the file was built" in result.output
    assert build(folder)["built"] == ["menu.closed"]


def test_an_mp3_without_the_sox_handler_says_what_to_install(tmp_path):
    if "mp3" in subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout.split():
        pytest.skip("this sox reads MP3")
    folder = new_site(tmp_path)
    (folder / "closed.mp3").write_bytes(b"ID3" + b"\0" * 100)
    edit(folder / "site.toml", "[menus.closed]\n", '[menus.closed]\naudio = "closed.mp3"\n')
    result = run("prompts", "build", folder)
    assert result.exit_code == 1
    assert "closed.mp3 is an MP3 and this sox has no MP3 handler: install libsox-fmt-mp3" in result.output
    assert "1 prompt could not be built" in result.output
    assert len(manifest(folder)["prompts"]) == 26  # the others were built


def test_missing_tools_name_the_package(tmp_path, monkeypatch):
    folder = new_site(tmp_path)
    sox = shutil.which("sox")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    result = run("prompts", "build", folder)
    assert result.exit_code == 1
    assert "zongji: sox is not installed (or not on PATH)" in result.output
    assert "sudo apt install sox" in result.output
    os.symlink(sox, bin_dir / "sox")
    result = run("prompts", "build", folder)
    assert result.exit_code == 1 and "sudo apt install espeak-ng" in result.output


# ---------------------------------------------------------------- the flash budget


def test_prompts_count_against_the_flash_budget(tmp_path):
    folder = new_site(tmp_path)
    build(folder)
    small = json.loads(run("check", "--json", folder).output)["flash"]
    assert small["prompt_files"] == 27 and small["prompts"] >= 27 * 4096 and small["over"] == 0
    for i in range(12):  # a long recorded greeting per menu of a big site: 12 x 150 KB
        (folder / "prompts" / ("menu.big%d.ulaw" % i)).write_bytes(b"\xff" * 150000)
    result = run("check", "--board", "esp32-devkitc", folder)
    assert result.exit_code == 1
    assert "prompts/manifest.json:1: error: the site does not fit on the esp32-devkitc's flash" in result.output
    assert "39 prompt files" in result.output
    assert run("check", "--board", "esp32-s3-octal", folder).exit_code == 0  # 8 MB of flash
    result = run("bundle", "--board", "esp32-devkitc", folder)
    assert result.exit_code == 1 and "does not fit" in result.output and "nothing written" in result.output
    assert not (folder / "site.zjb").exists()
    result = run("bundle", "--board", "esp32-s3-octal", folder)
    assert result.exit_code == 0 and "flash (esp32-s3-octal): " in result.output


def test_flash_estimate_counts_blocks_and_the_board_partition():
    from zongji_companion import flashbudget

    board = {"name": "b", "flash_size": "4MB", "limits": {"max_records": 100}}
    fit = flashbudget.estimate(board, 5000, [("prompts/a.ulaw", 1), ("prompts/b.ulaw", 4097)])
    assert fit["partition"] == 2 * 1024 * 1024 and fit["usable"] == int(fit["partition"] * 0.9)
    assert fit["bundle"] == 3 * 8192 and fit["prompts"] == 4096 + 8192
    assert fit["state"] == 28672 + 16384 + 8192  # records, registrations, room to replace the largest
    # the app: on a stock image the compiled core (77 modules, a block or more each) and microdot;
    # frozen into the image, only main.py, microdot and the three small files
    assert fit["app_files"] > 80 and fit["app"] >= 4096 * fit["app_files"] > 80 * 4096
    frozen = flashbudget.estimate(dict(board, frozen=True), 5000, [])
    assert frozen["app_files"] == 7 and frozen["app"] <= 72 * 1024 < fit["app"]  # with 3 folders of 2 blocks
    assert fit["total"] - frozen["total"] == fit["app"] - frozen["app"] + 4096 + 8192 + 8192  # prompts, largest
    assert flashbudget.flash_bytes("8MB") == 8 * 1024 * 1024
    big = flashbudget.estimate(board, 5000, [("p", 100000)] * 20)
    assert big["over"] > 0 and "does not fit on the b's flash" in flashbudget.over_message(big)


def test_check_without_board_files_skips_only_the_flash_estimate(tmp_path, monkeypatch):
    from zongji_companion import boards

    folder = new_site(tmp_path)
    monkeypatch.setattr(boards, "BOARDS_DIR", str(tmp_path / "none"))
    out = json.loads(run("check", "--json", folder).output)
    assert out["ok"] and "flash" not in out
    result = run("check", "--board", "esp32-wrover", folder)
    assert result.exit_code == 1 and "no board 'esp32-wrover'" in result.output


def test_sounds_are_built_from_recordings_and_checked(tmp_path):
    """[sounds] ringback and hold: a missing recording is an error at its line; once there,
    prompts build makes sound.ringback / sound.hold from them (sox), and check is clean."""
    folder = new_site(tmp_path)
    text = (folder / "site.toml").read_text(encoding="utf-8")
    (folder / "site.toml").write_text(
        text + '\n[sounds]\nringback = "sounds/rb.wav"\nhold = "sounds/hold.wav"\n', encoding="utf-8"
    )
    result = run("check", folder)
    line = line_of(folder / "site.toml", "sounds/rb.wav")
    assert result.exit_code == 1
    assert "site.toml:%d: error: [sounds] ringback: recording 'sounds/rb.wav' not found" % line in result.output
    (folder / "sounds").mkdir()
    synth(folder / "sounds" / "rb.wav", 1.0, 500)
    synth(folder / "sounds" / "hold.wav", 2.0, 700)
    built = build(folder)
    assert "sound.ringback" in built["built"] and "sound.hold" in built["built"]
    entry = manifest(folder)["prompts"]["sound.hold"]
    assert entry["source"] == "recording" and entry["recording"] == "sounds/hold.wav"
    seconds, _, _ = levels(folder / "prompts" / "sound.hold.ulaw")
    assert 2.0 < seconds < 2.3
    result = run("check", folder)
    assert result.exit_code == 0 and "sound." not in result.output, result.output


def test_name_recordings_are_built_for_extensions(tmp_path):
    """SITE/names/<number>.wav is a person saying their name: built as name.<number> (what
    dial-by-name says instead of the number); a file for no extension is left alone."""
    folder = new_site(tmp_path)
    (folder / "names").mkdir()
    synth(folder / "names" / "201.wav", 0.8, 500)
    synth(folder / "names" / "999.wav", 0.8, 500)  # nobody has 999
    built = build(folder)
    assert "name.201" in built["built"] and not [p for p in built["built"] if p == "name.999"]
    entry = manifest(folder)["prompts"]["name.201"]
    assert entry["source"] == "recording" and entry["recording"] == "names/201.wav"
    assert (folder / "prompts" / "name.201.ulaw").stat().st_size > 4000
    synth(folder / "names" / "201.wav", 0.5, 600)
    result = run("check", folder)
    assert "the recording names/201.wav changed after the file was built" in result.output
