from _sites import STAFF, ext_dicts, raw_site
from _support import raises
from zongji.site import bundle, schema
from zongji.site.bundle import BundleError

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

# A bundle built once on the host, kept beside the tests so MicroPython loads real bytes.
FIXTURE = "bundle_fixture.zjb"


def fixture_bytes():
    from _support import REPO, read_bytes

    return read_bytes(REPO + "/tests/core/data/" + FIXTURE)


def test_round_trip_restores_site_and_directory():
    data = fixture_bytes()
    site = bundle.load(data)
    assert len(site.directory) == len(STAFF)
    assert site.extension("201").name == "王小明"
    assert site.extension("203").pin == "4321"
    assert site.extension("201").follow_me == 20
    assert site.dialplan.match("600")[1] == ("group", "600")
    assert site.menus["main"]["options"]["2"] == "menu:support"
    assert len(site.version) == 64


def test_fixture_is_current():
    # The stored fixture must be exactly what today's encoder makes (canonical, reproducible).
    if not _HOST:
        return
    assert make() == fixture_bytes(), "regenerate: python tests/core/data/make_fixture.py"


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
