"""SIPVicious 0.3.3 (Debian's sipvicious) against host mode and the virtual device (`switchboard`): the attacker's view.

svwar enumerates extensions by comparing the status line (code and reason phrase) answered to
a random 32-bit user name with the one answered to each candidate. If the random name already
gets 401/403/407 it gives up, unless --force. Then a candidate answered differently is listed:
401/403/407 as "reqauth", 200 as "noauth", anything else but 404 (a 500, a 503 from a full
transaction table ...) as "weird", i.e. "probably exists". The switch must give every user
name the same 401 (REGISTER), 407 (INVITE), 200 (OPTIONS), even under the scan's load.

svcrack guesses one extension's password from a word list, one REGISTER per word, taking the
nonce and algorithm of the first challenge header; any 200 is "the password". The list here has
200 words with the real password at number 150. The switch's guard locks 201 at that address after
10 failures a minute and then drops its guesses without an answer, so svcrack runs out of
answers (--maximumtime) long before word 150. The lock is logged with the extension and the
reason; other extensions at that address, and 201 elsewhere, still work.

Both tools are bounded by --maximumtime and a subprocess timeout. SIPVicious 0.3.3 ignores
-b (its main() never passes the binding address on), so it binds every interface and sends
from 127.0.0.1, the address it targets; -x 127.0.0.1 keeps its Via/Contact on loopback too.
The legitimate user of the last check therefore registers from 127.0.0.2.

svcrack reads `algorithm=` of the first challenge only when a comma or CR follows it, and then
knows MD5 alone: with `algorithm=SHA-256,` first it crashes at the first guess
(UnboundLocalError), which would prove nothing, so this test insists the lock came.
"""

from sipharness import LOOPBACK, run, sip_options, sipp, tool, write_injection

ATTACKER_IP = LOOPBACK  # where SIPVicious sends from (see above)
OTHER_IP = "127.0.0.2"  # a legitimate phone elsewhere on the "LAN"


def _bounded(argv, timeout=60):
    res = run(argv, timeout=timeout)
    return res.returncode, res.stdout + res.stderr


def _assert_not_crashed(name, out):
    assert "Traceback" not in out and "Unhandled exception" not in out, (
        "%s crashed, so it proves nothing about the switch:\n%s" % (name, out[-3000:])
    )
    assert "No server response" not in out and "no server response" not in out, (
        "%s got no answer at all (is the switch listening?):\n%s" % (name, out[-2000:])
    )


def test_svwar_finds_no_extension(example_site, switchboard, free_udp_port):
    svwar = tool("svwar")
    hm = switchboard(example_site)
    runs = [
        ("REGISTER", []),  # svwar's own sanity check: an unknown user already gets 401
        ("REGISTER", ["--force"]),  # scan anyway: every extension answers like the unknown one
        ("INVITE", ["--force"]),
        ("OPTIONS", ["--force"]),
    ]
    for method, extra in runs:
        argv = [svwar, "-e", "200-260", "-m", method, "-p", hm.port, "-P", free_udp_port(), "-x", LOOPBACK,
                "--maximumtime", "3", "-t", "0.02"] + extra + [LOOPBACK]  # fmt: skip
        code, out = _bounded(argv)
        what = "svwar -m %s %s" % (method, " ".join(extra))
        _assert_not_crashed(what, out)
        assert "exists" not in out and "Extension" not in out, "%s found extensions:\n%s" % (what, out)
        assert "found nothing" in out, "%s (exit %d):\n%s" % (what, code, out)
    assert hm.registered() == [], hm.tail()
    assert hm.bans() == [], "probing without credentials must not ban: %s" % hm.tail()
    assert hm.problems() == [], hm.problems()


def test_svcrack_is_locked_out_before_the_password(example_site, switchboard, free_udp_port, workdir):
    svcrack = tool("svcrack")
    hm = switchboard(example_site)
    secret = example_site.secret("201")
    words = ["guess%03d" % i for i in range(1, 201)]
    words[149] = secret  # the real password is word 150 of 200
    wordlist = workdir / "words.txt"
    wordlist.write_text("\n".join(words) + "\n")

    argv = [svcrack, "-u", "201", "-d", wordlist, "-p", hm.port, "-P", free_udp_port(), "-x", LOOPBACK,
            "--maximumtime", "3", LOOPBACK]  # fmt: skip
    code, out = _bounded(argv, timeout=90)
    (workdir / "svcrack.out").write_text(out)
    _assert_not_crashed("svcrack", out)
    assert secret not in out, "svcrack found the password of 201:\n%s" % out
    assert "found nothing" in out, "svcrack (exit %d):\n%s" % (code, out)

    # it was stopped by the lock on 201 at its address, which the log names with the reason
    hm.wait_for(r"(?:^|\s)locked 201 .* at %s for \d+ s: wrong password" % ATTACKER_IP.replace(".", r"\."), 5)
    assert hm.registered() == [], hm.tail()
    # one extension's guesses do not ban the address: the other phones behind it are served
    assert hm.bans() == [], hm.tail()
    assert sip_options((LOOPBACK, hm.port), timeout=2.0, local_ip=ATTACKER_IP) is not None
    other = example_site.secret("202")
    inf = write_injection(workdir / "202.csv", [("202", other)])
    res = sipp("register_auth.xml", hm.addr, workdir, "register202", calls=1, inf=inf, local_ip=ATTACKER_IP,
               behaviors="all,-bye")  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    # and 201 itself registers from another address
    inf = write_injection(workdir / "201.csv", [("201", secret)])
    res = sipp("register_auth.xml", hm.addr, workdir, "register201", calls=1, inf=inf, local_ip=OTHER_IP,
               behaviors="all,-bye")  # fmt: skip
    assert res.returncode == 0 and res.successful == 1, res.explain()
    hm.wait_for(r"(?:^|\s)registered 201 .*from %s:" % OTHER_IP.replace(".", r"\."), 5)
    assert hm.problems() == [], hm.problems()
