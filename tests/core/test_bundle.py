import json

from _sites import STAFF, build, ext_dicts, raw_site
from _support import REPO, SkipTest, counter_random, raises
from zongji.sip.auth import parse_auth, parse_challenge, respond
from zongji.sip.digest import OK, Authenticator
from zongji.site import bundle, schema
from zongji.site.bundle import BundleError
from zongji.site.directory import FIELDS, Directory

try:
    import io
except ImportError:  # pragma: no cover
    io = None


def make(raw=None, rows=None):
    site, problems = schema.normalize(raw or raw_site())
    return bundle.encode(site, ext_dicts(rows))


try:
    _HOST = bool(make())
except TypeError:  # MicroPython's json.dumps has no sort_keys: bundles are built on the host
    _HOST = False

REPO_DATA = REPO + "/tests/core/data"
# A bundle built once on the host, kept beside the tests so MicroPython loads real bytes.
FIXTURE = "bundle_fixture.zjb"


def fixture_bytes(name=FIXTURE):
    from _support import REPO, read_bytes

    return read_bytes(REPO + "/tests/core/data/" + name)


def test_round_trip_restores_site_and_directory():
    data = fixture_bytes()
    site = bundle.load(data)
    assert len(site.directory) == len(STAFF)
    assert site.extension("201").name == "王小明"
    assert site.check_pin("203", "4321") and not site.check_pin("203", "1234")
    assert site.extension("201").has_phone() and not site.extension("205").has_phone()
    assert site.extension("201").follow_me == 20
    assert site.dialplan.match("600")[1] == ("group", "600")
    assert site.menus["main"]["options"]["2"] == "menu:support"
    assert len(site.version) == 64


def test_fixture_is_current():
    # The stored fixture must be exactly what today's encoder makes (canonical, reproducible).
    if not _HOST:
        return
    assert make() == fixture_bytes(), "regenerate: python tests/core/data/make_fixture.py"
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixture", REPO_DATA + "/make_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.make(mod.EDITED) == fixture_bytes("bundle_fixture_b.zjb"), "regenerate: make_fixture.py"


def test_build_is_canonical_and_versioned_by_content():
    if not _HOST:
        return
    a = make()
    b = make()
    assert a == b
    raw = raw_site()
    raw["menus"]["main"]["timeout"] = 6
    assert make(raw).split(b"\n")[0] != a.split(b"\n")[0]


def test_streamed_load_matches_bytes_load():
    if io is None or not hasattr(io, "BytesIO"):
        return
    data = fixture_bytes()
    assert bundle.load(io.BytesIO(data)).version == bundle.load(data).version


def test_tampered_bundle_is_refused():
    data = fixture_bytes()
    bad = data.replace("王小明".encode(), "王大明".encode())
    e = raises(BundleError, bundle.load, bad)
    assert "sha256" in str(e)


def test_truncated_bundle_is_refused():
    data = fixture_bytes()
    lines = data.split(b"\n")
    e = raises(BundleError, bundle.load, b"\n".join(lines[:-3]) + b"\n")
    assert "sha256" in str(e) or "extensions" in str(e)
    raises(BundleError, bundle.load, b"")
    raises(BundleError, bundle.load, lines[0] + b"\n")


def test_garbage_is_refused_cleanly():
    for junk in (b"\xff\xfe\x00", b"{}\n", b"not json\n", b'{"kind":"zongji-bundle","format":99}\n'):
        raises(BundleError, bundle.load, junk)


def test_loader_reruns_the_checks():
    # A bundle whose content is consistent with its hash but breaks a rule is still refused:
    # the device trusts the rules, not the sender.
    if not _HOST:
        return
    raw = raw_site()
    raw["groups"]["600"]["members"] = ["201", "999"]
    e = raises(BundleError, bundle.load, make(raw))
    assert "999" in str(e)


def test_the_loader_runs_the_checks_errors_only():
    # the warnings only the host shows cost the device time and heap: load() skips them
    seen = []
    real = bundle.checks.check

    def spy(site, extensions, warnings=True):
        seen.append(warnings)
        return real(site, extensions, warnings)

    bundle.checks.check = spy
    try:
        bundle.load(fixture_bytes())
    finally:
        bundle.checks.check = real
    assert seen == [False]
    if not _HOST:
        return
    raw = raw_site()
    raw["hours"]["open"] = ["mon-fri 09:00-18:00", "wed 10:00-11:00"]  # a warning on the host
    assert bundle.load(make(raw)).version


# ---- secrets ---------------------------------------------------------------------------------


def test_the_bundle_holds_no_phone_secret_and_no_pin():
    data = fixture_bytes()
    for row in STAFF:
        if row[3]:
            assert row[3].encode() not in data, row[0]
    assert b'"4321"' not in data  # 203's PIN
    # the provider's password stays: its realm is only known when it challenges (docs/site-format.md)
    assert b'"trunkpass"' in data


def _login(site, number, password, which=0):
    """Does a phone with this password register? (the site's own Authenticator and HA1 lookup)"""
    auth = Authenticator(site.realm, b"k" * 16, random_bytes=counter_random(), algorithms=site.digest)
    challenge = parse_challenge(auth.challenge(1000)[which])
    sent = parse_auth(respond(challenge, "REGISTER", "sip:zongji", number, password, "c0ffee", 1))
    return auth.check("REGISTER", sent, site.directory.ha1, 1000) == OK, challenge["algorithm"]


def test_phones_authenticate_against_the_loaded_ha1s():
    site = bundle.load(fixture_bytes())
    assert _login(site, "201", "s3cret-201-x") == (True, "MD5")
    assert _login(site, "201", "s3cret-202-x") == (False, "MD5")
    assert _login(site, "205", "") == (False, "MD5")  # mobile only
    assert site.directory.ha1("201", "SHA-256") is None  # not offered by this site: not kept


def test_sha256_sites_keep_both_ha1s_and_a_new_realm_needs_a_new_bundle():
    if not _HOST:
        raise SkipTest("bundles are built on the host")
    raw = raw_site(staff={"default_class": "internal", "digest": ["SHA-256", "MD5"], "realm": "branch.example"})
    site = bundle.load(make(raw))
    assert _login(site, "202", "s3cret-202-x", which=0) == (True, "SHA-256")
    assert _login(site, "202", "s3cret-202-x", which=1) == (True, "MD5")
    # the HA1s were made for this realm: the same rows under another realm are other values
    assert site.directory.ha1("202", "MD5") != bundle.load(make()).directory.ha1("202", "MD5")


def test_a_format_1_bundle_asks_for_a_rebuild():
    e = raises(BundleError, bundle.load, fixture_bytes("bundle_format1.zjb"))
    assert "format 1" in str(e) and "zongji bundle" in str(e), str(e)


def test_pin_check_needs_the_right_pin_of_the_right_extension():
    site = build()
    assert site.check_pin("203", "4321")
    for number, pin in (("203", "4322"), ("203", ""), ("203", "43210"), ("201", "4321"), ("999", "4321")):
        assert not site.check_pin(number, pin), (number, pin)


def test_a_record_costs_no_more_than_its_secret_did():
    # The blob an extension takes with MD5 only, against what format 1 kept for the same row:
    # every field as text, a 16-character secret (zongji init's are 16), a 4-digit PIN or none.
    for pin, extra in (("", 0), ("1234", 4)):
        rows = [[str(3000 + i), "Wang %d" % i, "Sales", "k" * 16, "", "staff", 0, pin, "9264"] for i in range(40)]
        site = build(rows=rows)
        old = 0
        for r in rows:
            text = [str(v) if v else "" for v in r[:2] + ["0"] + r[3:5] + ["0"] + r[6:]]
            old += len("\x1f".join(text).encode()) + 1
        assert site.directory.size_bytes() <= old + extra * len(rows), (pin, site.directory.size_bytes(), old)
        assert all(e.has_pin() == bool(pin) and e.has_phone() for e in site.directory.records())


def test_a_row_with_a_bad_hash_is_refused():
    d = Directory(("MD5",))
    row = ["201", "A", "", "ab" * 16, "", "", "", 0, "", ""]
    d.add(row)
    for bad in (["202", "B", "", "ab" * 15, "", "", "", 0, "", ""], ["203", "C", "", "zz" * 16, "", "", "", 0, "", ""]):
        raises(ValueError, d.add, bad)
    raises(ValueError, Directory(("SHA-256",)).add, ["204", "D", "", "ab" * 16, "", "", "", 0, "", ""])


# ---- the heap a load takes (bench/heap_peak.py measures it; tests/test_load_peak.py bounds it)


def _site_and_rows(rows):
    from zongji.site.bundle import stored_row
    from zongji.site.model import realm_of

    site, _ = schema.normalize(raw_site())
    realm = realm_of(site)
    return site, [stored_row(e, realm) for e in ext_dicts(rows)]


def test_the_device_checks_numbers_in_the_directory_with_the_same_errors():
    # bundle.load looks extension numbers up in the Directory's index instead of copying them:
    # the errors must be those the host finds from the staff rows, in the same order
    from zongji.site import checks

    bad = [
        ["5", "One digit", "", "s3cret-005-x", "", "staff", 0, "", ""],
        ["1100000", "Seven digits", "", "s3cret-007-x", "", "staff", 0, "", ""],
        ["110", "Police", "", "s3cret-110-x", "", "staff", 0, "", ""],  # CN emergency
        ["0123", "Outside prefix", "", "s3cret-123-x", "", "staff", 0, "", ""],
        ["600", "Same as the group", "", "s3cret-600-x", "", "staff", 0, "", ""],
    ]
    rows = STAFF + bad
    site, stored = _site_and_rows(rows)
    site["groups"]["600"]["members"] = ["201", "110", "5", "999"]
    site["operator"] = {"target": "0123"}
    d = Directory(site["staff"]["digest"])
    for r in stored:
        d.add(r)
    d.freeze()
    host = checks.check(site, ext_dicts(rows), warnings=False)
    device = checks.check(site, d.view(), warnings=False)
    assert device == host, (device, host)
    assert len(host) >= 7, host
    assert any("already used by extension 600" in p[2] for p in host), host


def test_errors_only_keeps_at_most_max_errors():
    from zongji.site import checks

    rows = [[str(3000 + i), "", "", "s3cret-%04d-x" % i, "", "staff", 0, "", ""] for i in range(200)]  # no names
    site, _ = schema.normalize(raw_site())
    found = checks.check(site, ext_dicts(rows), warnings=False)
    assert len(found) == checks.MAX_ERRORS and all(p[0] == "error" for p in found)
    assert found[0][1] == ("staff", 0, "name"), found[0]


def test_the_stepped_loader_gives_the_same_site():
    data = fixture_bytes()
    loader = bundle.Loader()
    for line in bundle._lines(io.BytesIO(data) if io is not None and hasattr(io, "BytesIO") else data):
        loader.feed(line)
    steps = 0
    for _ in loader.finishing():
        steps += 1
    site = loader.result
    assert steps == 2 * len(STAFF), steps  # each row twice: numbers, then staff checks
    assert site.version == bundle.load(data).version
    assert [e.number for e in site.directory.records()] == [r[0] for r in STAFF]


def test_the_stepped_loader_refuses_what_load_refuses():
    if not _HOST:
        raise SkipTest("bundles are built on the host")
    raw = raw_site()
    raw["groups"]["600"]["members"] = ["201", "999"]
    loader = bundle.Loader()
    for line in bundle._lines(make(raw)):
        loader.feed(line)
    e = raises(BundleError, lambda: [None for _ in loader.finishing()])
    assert "999" in str(e) and str(e) == str(raises(BundleError, bundle.load, make(raw)))


def test_a_stream_is_read_in_blocks_and_long_lines_are_refused():
    if io is None or not hasattr(io, "BytesIO"):
        return
    data = fixture_bytes()
    got = list(bundle._lines(io.BytesIO(data)))
    assert got == list(bundle._lines(data)) and b"".join(got) == data
    assert any(len(line) > bundle.BLOCK for line in got)  # the site line spans blocks
    long = data.split(b"\n")[0] + b"\n" + b"[" + b"1," * bundle.MAX_LINE + b"1]\n"
    e = raises(BundleError, bundle.load, io.BytesIO(long))
    assert "longer than" in str(e), str(e)


def test_the_directory_spans_chunks_and_shards():
    from zongji.site import directory

    rows = [[str(3000 + i), "员工%d" % i, "Sales 销售", "k" * 32, "", "staff", 0, "", "9264"] for i in range(300)]
    rows.append(["4999", "x" * (directory.CHUNK + 100), "", "", "13800138000", "staff", 0, "", ""])  # its own chunk
    rows.append(["5000", "After the long one", "", "k" * 32, "", "staff", 0, "", ""])
    d = Directory(("MD5",))
    for r in rows:
        d.add([r[0], r[1], r[2], "ab" * 16 if r[3] else "", "", r[4], r[5], r[6], "", r[8]])
    before = [e.number for e in d.records()]  # read before freeze: seals the open chunk
    d.add(["5001", "Added after a read", "", "", "", "13800138001", "", 0, "", ""])
    d.freeze()
    numbers = [r[0] for r in rows] + ["5001"]
    assert before == numbers[:-1]
    assert list(d.numbers()) == numbers and [e.number for e in d.records()] == numbers
    assert sorted(d.codes()) == sorted([directory.code(n) for n in numbers])
    assert len(d._chunks) >= 5 and max([len(c) for c in d._chunks]) > directory.CHUNK
    assert min([len(s) for s in d._index]) > 0  # 3000..3299 spread over every shard
    assert d.get("4999").name == "x" * (directory.CHUNK + 100) and d.get("5000").has_phone()
    assert d.get("3299").name == "员工299" and d.get("3299").department == "Sales 销售"
    assert d.get("3300") is None and not d.has("3300") and d.has("5001")
    raises(ValueError, d.add, ["5002", "Late", "", "", "", "", "", 0, "", ""])  # frozen


def test_name_keys_are_the_records_numbers_and_keys():
    # what the attendant's dial-by-name can walk instead of a list of every record
    site = bundle.load(fixture_bytes())
    d = site.directory
    assert list(d.name_keys()) == [(e.number, e.keys) for e in d.records()]
    assert ("201", "9264 9426.6464") in list(d.name_keys())


def test_a_device_can_drop_the_loader_modules_and_load_again():
    import sys

    import zongji.site

    data = fixture_bytes()
    bundle.load(data)
    assert zongji.site.release_loader() == 3
    assert "zongji.site.checks" not in sys.modules and "zongji.site.schema" not in sys.modules
    site = bundle.load(data)  # imports them again
    assert site.extension("201").name == "王小明" and "zongji.site.checks" in sys.modules
    raw = bundle.checks  # the module, as before the drop, for tests that patch it
    assert raw is sys.modules["zongji.site.checks"]


def test_the_directory_size_in_the_header_is_a_hint():
    # not covered by the sha256: a wrong or absurd value changes how the heap is asked, not the site
    data = fixture_bytes()
    head, rest = data.split(b"\n", 1)
    want = bundle.load(data)
    for size in (b"0", b"1", b"9999999999", b'"x"'):
        bad = head.replace(b'"directory_bytes":373', b'"directory_bytes":' + size) + b"\n" + rest
        assert bad != data
        site = bundle.load(bad)
        assert site.version == want.version
        assert [e.number for e in site.directory.records()] == [e.number for e in want.directory.records()]


def test_a_pulled_rows_hashes_rebuild_the_same_bundle_and_phones_still_log_in():
    # `zongji pull` writes a device's rows back as "ha1:MD5[:SHA-256]" and "hash:PIN" (the
    # device has nothing else); a bundle made from those is the one it came from
    if not _HOST:
        raise SkipTest("bundles are built on the host")
    raw = raw_site(staff={"default_class": "internal", "digest": ["SHA-256", "MD5"], "realm": "branch.example"})
    original = make(raw)
    site = bundle.load(original)
    pulled = []
    for r in STAFF:
        rec = site.directory.get(r[0])
        md5, sha = site.directory.ha1(r[0], "MD5"), site.directory.ha1(r[0], "SHA-256")
        secret = "ha1:%s:%s" % (md5, sha) if md5 else ""
        rows = [json.loads(line) for line in original.split(b"\n")[2:] if line]
        pin_hash = [row for row in rows if row[0] == r[0]][0][FIELDS.index("pin_hash")]
        pulled.append(r[:3] + [secret] + r[4:7] + ["hash:" + pin_hash if pin_hash else ""] + r[8:])
        assert rec is not None
    assert make(raw, pulled) == original
    again = bundle.load(make(raw, pulled))
    assert _login(again, "202", "s3cret-202-x", which=0) == (True, "SHA-256")
    assert again.check_pin("203", "4321") and not again.check_pin("203", "4322")
