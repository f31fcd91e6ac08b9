from _support import raises
from zongji.site import countries
from zongji.site.countries import (
    EMERGENCY,
    INTERNATIONAL,
    LOCAL,
    MOBILE,
    NATIONAL,
    PREMIUM,
    SUPPORTED,
    classify,
    complete,
)


def test_every_supported_country_has_emergency_numbers_prefixes_and_tones():
    for cc in SUPPORTED:
        assert countries.emergency(cc), cc
        assert countries.international_prefix(cc)
        plan = countries.tones(cc)
        for name in countries.TONE_NAMES:
            freqs, cadence = plan[name]
            assert freqs and all(300 <= f <= 700 for f in freqs), (cc, name)
            assert len(cadence) % 2 == 0, (cc, name)
        assert plan["dial"][1] == (), cc  # dial tone is continuous everywhere here
        for num in countries.emergency(cc):
            assert classify(cc, num) == EMERGENCY
            assert complete(cc, num)


def test_emergency_numbers_per_country():
    assert countries.emergency("CN")[:4] == ("110", "119", "120", "122")
    assert "112" in countries.emergency("CN")
    assert "911" in countries.emergency("US") and "911" in countries.emergency("CA")
    assert "933" in countries.emergency("US")
    assert set(countries.emergency("GB")) == {"999", "112"}
    assert set(countries.emergency("DE")) == {"110", "112"}
    for num in ("15", "17", "18", "112", "114", "115", "119"):
        assert num in countries.emergency("FR")
    assert {"999", "112"} <= set(countries.emergency("HK"))
    assert {"995", "999", "112"} <= set(countries.emergency("SG"))
    assert set(countries.emergency("AU")) == {"000", "112", "106"}
    assert set(countries.emergency("JP")) == {"110", "118", "119"}


def test_unknown_country_lists_the_supported_ones():
    e = raises(ValueError, classify, "XX", "110")
    assert "'XX'" in str(e) and "CN" in str(e) and "JP" in str(e)
    raises(ValueError, countries.emergency, "cn")
    raises(ValueError, countries.tones, "")


def test_prefixes():
    assert countries.international_prefix("CN") == "00"
    assert countries.international_prefix("US") == "011"
    assert countries.international_prefix("JP") == "010"
    assert countries.international_prefix("AU") == "0011"
    assert countries.trunk_prefix("CN") == "0"
    assert countries.trunk_prefix("CA") == "1"
    assert countries.trunk_prefix("HK") == "" and countries.trunk_prefix("SG") == ""
    assert countries.calling_code("HK") == "852"


def test_not_a_number():
    for bad in ("", "abc", "138-0013-8000", "++86", " 110", "+86 10"):
        assert classify("CN", bad) is None, bad
        assert not complete("CN", bad)


def test_china():
    assert classify("CN", "13800138000") == MOBILE and complete("CN", "13800138000")
    assert classify("CN", "1380013800") == MOBILE and not complete("CN", "1380013800")
    assert classify("CN", "013800138000") == MOBILE and complete("CN", "013800138000")
    assert classify("CN", "138001380001") is None  # a 12-digit mobile does not exist
    assert classify("CN", "01012345678") == NATIONAL and complete("CN", "01012345678")
    assert classify("CN", "075512345678") == NATIONAL and complete("CN", "075512345678")
    assert not complete("CN", "07551234567")  # 3-digit area codes have 7- or 8-digit numbers
    assert classify("CN", "62345678") == LOCAL and complete("CN", "62345678")
    assert classify("CN", "6234567") == LOCAL and not complete("CN", "6234567")
    assert classify("CN", "95588") == LOCAL  # bank service number
    assert classify("CN", "10086") == LOCAL
    assert classify("CN", "4008123123") == NATIONAL
    assert classify("CN", "16812345") == PREMIUM  # information line
    assert classify("CN", "0044201234567") == INTERNATIONAL
    assert classify("CN", "17951") == INTERNATIONAL  # IP carrier prefix: anything may follow


def test_own_country_code_is_dialled_at_home():
    assert classify("CN", "+8613800138000") == MOBILE
    assert complete("CN", "+8613800138000")
    assert classify("CN", "008613800138000") == MOBILE
    assert classify("CN", "+861012345678") == NATIONAL
    assert countries.normalize("CN", "+861012345678") == "01012345678"
    assert countries.normalize("GB", "+447700900123") == "07700900123"
    assert countries.normalize("HK", "+85291234567") == "91234567"
    assert countries.normalize("US", "+14155551234") == "14155551234"
    assert countries.normalize("CN", "0044201234") == "+44201234"
    assert countries.normalize("CN", "13800138000") == "13800138000"
    assert countries.normalize("CN", "x") is None
    assert classify("CN", "+12125551234") == INTERNATIONAL
    assert classify("US", "+8613800138000") == INTERNATIONAL
    assert classify("CN", "+1234567890123456") is None  # longer than E.164 allows


def test_partial_numbers_always_classify():
    # The dial plan classifies after every digit: no prefix of a real number may be None.
    for cc, num in (
        ("CN", "013800138000"),
        ("CN", "0044201234567"),
        ("US", "011442012345678"),
        ("US", "14155551234"),
        ("GB", "07700900123"),
        ("DE", "015112345678"),
        ("FR", "0612345678"),
        ("HK", "0014155551234"),
        ("SG", "0014155551234"),
        ("AU", "00114155551234"),
        ("JP", "01014155551234"),
        ("JP", "09012345678"),
    ):
        for i in range(1, len(num) + 1):
            assert classify(cc, num[:i]) is not None, (cc, num[:i])
            if classify(cc, num[:i]) != INTERNATIONAL:  # those are complete at 15 digits only
                assert complete(cc, num[:i]) == (i == len(num)), (cc, num[:i])


def test_nanp():
    for cc in ("US", "CA"):
        assert classify(cc, "14155551234") == NATIONAL and complete(cc, "14155551234")
        assert classify(cc, "4155551234") == NATIONAL and complete(cc, "4155551234")
        assert classify(cc, "5551234") == LOCAL and not complete(cc, "5551234")
        assert classify(cc, "19005551234") == PREMIUM
        assert classify(cc, "9005551234") == PREMIUM
        assert classify(cc, "12129761234") == PREMIUM  # 976 exchange
        assert classify(cc, "18005551234") == NATIONAL  # toll-free
        assert classify(cc, "411") == LOCAL and complete(cc, "411")
        assert classify(cc, "4115551234") is None  # N11 is never an area code
        assert classify(cc, "01144201234567") == INTERNATIONAL
        assert classify(cc, "101") == INTERNATIONAL  # dial-around carrier code
        # Caribbean area codes are dialled like national numbers but billed abroad
        assert classify(cc, "18765551234") == INTERNATIONAL and complete(cc, "18765551234")
        assert classify(cc, "8095551234") == INTERNATIONAL
        assert classify(cc, "8765551") == LOCAL  # 7 digits: a local exchange 876
        assert classify(cc, "17875551234") == NATIONAL  # Puerto Rico is domestic


def test_europe():
    assert classify("GB", "07700900123") == MOBILE and complete("GB", "07700900123")
    assert classify("GB", "09012345678") == PREMIUM
    assert classify("GB", "08712345678") == PREMIUM
    assert classify("GB", "08001111") == NATIONAL and not complete("GB", "08001111")
    assert classify("GB", "02079460000") == NATIONAL and complete("GB", "02079460000")
    assert classify("GB", "118118") == PREMIUM
    assert classify("GB", "79460000") == LOCAL
    assert classify("DE", "015112345678") == MOBILE and complete("DE", "015112345678")
    assert classify("DE", "01701234567") == MOBILE
    assert classify("DE", "09001234567") == PREMIUM
    assert classify("DE", "01371234567") == PREMIUM
    assert classify("DE", "0301234567") == NATIONAL and not complete("DE", "0301234567")
    assert classify("DE", "0108800441234") == INTERNATIONAL  # call-by-call prefix
    assert classify("DE", "11880") == PREMIUM
    assert classify("FR", "0612345678") == MOBILE and complete("FR", "0612345678")
    assert classify("FR", "0712345678") == MOBILE
    assert classify("FR", "0899123456") == PREMIUM
    assert classify("FR", "0800123456") == NATIONAL
    assert classify("FR", "0142685300") == NATIONAL and complete("FR", "0142685300")
    assert classify("FR", "3611") == PREMIUM and classify("FR", "3114") == LOCAL
    assert classify("FR", "01426853001") is None


def test_asia_pacific():
    assert classify("HK", "91234567") == MOBILE and complete("HK", "91234567")
    assert classify("HK", "61234567") == MOBILE
    assert classify("HK", "51234567") == MOBILE
    assert classify("HK", "58123456") == LOCAL  # 58x is fixed
    assert classify("HK", "21234567") == LOCAL and complete("HK", "21234567")
    assert classify("HK", "212345678") is None
    assert classify("HK", "00144201234567") == INTERNATIONAL
    assert classify("HK", "90012345678") == PREMIUM
    assert classify("SG", "81234567") == MOBILE and complete("SG", "81234567")
    assert classify("SG", "91234567") == MOBILE
    assert classify("SG", "61234567") == LOCAL and complete("SG", "61234567")
    assert classify("SG", "19001234567") == PREMIUM
    assert classify("SG", "0204420123456") == INTERNATIONAL
    assert classify("AU", "0412345678") == MOBILE and complete("AU", "0412345678")
    assert classify("AU", "0291234567") == NATIONAL and complete("AU", "0291234567")
    assert classify("AU", "92345678") == LOCAL and complete("AU", "92345678")
    assert classify("AU", "1900123456") == PREMIUM
    assert classify("AU", "1300123456") == NATIONAL
    assert classify("AU", "001144201234567") == INTERNATIONAL
    assert classify("JP", "09012345678") == MOBILE and complete("JP", "09012345678")
    assert classify("JP", "08012345678") == MOBILE
    assert classify("JP", "07012345678") == MOBILE
    assert classify("JP", "0312345678") == NATIONAL and complete("JP", "0312345678")
    assert classify("JP", "0120123456") == NATIONAL
    assert classify("JP", "0990123456") == PREMIUM
    assert classify("JP", "01044201234567") == INTERNATIONAL
    assert classify("JP", "0033010441234") == INTERNATIONAL  # carrier code first


def test_tone_plans():
    cn = countries.tones("CN")
    assert cn["dial"] == ((450,), ())
    assert cn["ringback"] == ((450,), (1000, 4000))
    assert cn["busy"] == ((450,), (350, 350))
    assert cn["congestion"] == ((450,), (700, 700))
    us = countries.tones("US")
    assert us["dial"] == ((350, 440), ())
    assert us["ringback"] == ((440, 480), (2000, 4000))
    assert us["busy"] == ((480, 620), (500, 500))
    assert us["congestion"] == ((480, 620), (250, 250))
    assert countries.tones("CA") == us
    gb = countries.tones("GB")
    assert gb["ringback"] == ((400, 450), (400, 200, 400, 2000))
    assert gb["busy"] == ((400,), (375, 375))
    assert countries.tones("DE")["busy"] == ((425,), (480, 480))
    assert countries.tones("FR")["ringback"] == ((440,), (1500, 3500))
    assert countries.tones("JP")["ringback"] == ((400,), (1000, 2000))


def test_pattern_matcher():
    assert countries.starts("13800", "1[3-9]")
    assert not countries.starts("12800", "1[3-9]")
    assert countries.starts("0612", "0[67]")
    assert countries.starts("12129761234", "1[2-9]xx976")
    assert not countries.starts("1", "1[3-9]")  # too short to tell
    assert countries.starts("", "")
