"""`zongji provider`: a tiny SIP provider on this computer, to try outside calls with `zongji run`."""

import ipaddress
import os

import click

from zongji_companion import sitefiles
from zongji_companion.cli import ZongjiError, main
from zongji_companion.cli.run import parse_sip

DEFAULT = "127.0.0.1:5070"  # the example site's [trunk]


def _trunk_address(site):
    """(host, port) of SITE's [trunk], or None when SITE has no readable [trunk]."""
    loaded = sitefiles.load(site)
    trunk = loaded.site_raw.get("trunk") if not loaded.fatal or loaded.site_raw else None
    if not isinstance(trunk, dict) or not isinstance(trunk.get("host"), str):
        return None
    port = trunk.get("port", 5060)
    return trunk["host"], port if isinstance(port, int) and not isinstance(port, bool) else 5060


@main.command("provider")
@click.argument("site", required=False, type=click.Path())
@click.option(
    "--sip",
    metavar="HOST:PORT",
    help="Where to listen (UDP). Default: SITE's [trunk] host and port, else %s; port 0 takes any free port." % DEFAULT,
)
@click.option(
    "--ring",
    type=click.FloatRange(min=0, max=120),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How long each call rings before it is answered.",
)
def provider_cmd(site, sip, ring):
    """A test tool: a tiny SIP provider on this computer, for trying outside calls.

    \b
    zongji provider example          in one terminal: listens where example/site.toml's [trunk] points
    zongji run example               in another; then dial 0 and a mobile from a softphone

    It accepts any REGISTER (no password is checked), rings each INVITE for --ring seconds,
    then answers it with the caller's own SDP (nobody is there: no audio flows), and answers
    BYE and CANCEL. Each call is printed ("call to 13800138000 from ..."). It is not a
    provider, a SIP test suite or a media server: only enough for the switch's trunk to
    register and for outside calls to connect. It listens on this computer only (127.0.0.0/8
    or ::1) unless --sip names another address.
    """
    from zongji_companion import testprovider

    if sip:
        host, port = parse_sip(sip)
    else:
        where = None
        if site is not None or os.path.exists(sitefiles.SITE_TOML):
            where = _trunk_address(site or ".")
            if where is None:
                raise ZongjiError(
                    "%s has no [trunk] with a host to stand in for: add one, or pass --sip %s" % (site or ".", DEFAULT)
                )
        text = "%s:%d" % where if where else DEFAULT
        if where and ":" in where[0]:
            text = "[%s]:%d" % where
        host, port = parse_sip(text)
        if not ipaddress.ip_address(host).is_loopback:
            raise ZongjiError(
                "[trunk] host %s is not this computer, so this is a real provider: the test provider "
                'only stands in for one on 127.0.0.1 (set [trunk] host = "127.0.0.1" and port = 5070, '
                "or pass --sip)" % where[0]
            )

    def log(line):
        click.echo(line)

    try:
        testprovider.serve(host, port, ring_s=ring, log=log)
    except KeyboardInterrupt:
        click.echo("test provider stopped")
    except OSError as e:
        raise ZongjiError(
            "can't listen on %s:%d: %s (is another provider or `zongji provider` running there?)"
            % (host, port, e.strerror or e)
        ) from None
