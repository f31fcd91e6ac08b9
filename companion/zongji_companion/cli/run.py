"""`zongji run`: host mode, the device's own SIP switch on this computer."""

import os

import click

from zongji_companion import sitefiles
from zongji_companion.cli import ZongjiError, load_site, main, site_folder, state_for
from zongji_companion.cli.init import write_example


def parse_sip(text, param_hint="--sip"):
    """'HOST:PORT', '[V6]:PORT', 'HOST' or 'V6' -> (ip, port); ports 0 (any free one) to 65535."""
    import ipaddress
    import socket

    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    port = port or "5060"
    if not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(
            "write HOST:PORT, e.g. 127.0.0.1:5060, or 0.0.0.0:5060 for the LAN", param_hint=param_hint
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:  # a name such as localhost: listen on (and advertise) its address
            host = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]
        except (OSError, UnicodeError):
            raise click.BadParameter("can't find the address of %s" % host, param_hint=param_hint) from None
    return host, int(port)


def serve_admin_options(what, token_default):
    """--admin HOST:PORT and --token, for a command that serves the admin protocol (`zongji run`,
    `zongji device run`): what it serves as, and where its token comes from without --token."""

    def wrap(f):
        f = click.option(
            "--token",
            envvar="ZONGJI_TOKEN",
            metavar="TEXT",
            help="The admin token (also ZONGJI_TOKEN; at least 16 characters). Default: %s." % token_default,
        )(f)
        return click.option(
            "--admin",
            metavar="HOST:PORT",
            help="Serve the admin protocol over HTTP there, %s: `zongji sync / status / pull / cdr --device "
            "http://HOST:PORT` then change it live. E.g. 127.0.0.1:8080; off by default." % what,
        )(f)

    return wrap


@main.command("run")
@click.argument("site", required=False, type=click.Path())
@click.option(
    "--sip",
    default="127.0.0.1:5060",
    show_default=True,
    metavar="HOST:PORT",
    help="Where phones reach the switch (UDP). 0.0.0.0:5060 listens on every interface, for phones "
    "on the LAN; port 0 takes any free port.",
)
@click.option(
    "--state",
    type=click.Path(file_okay=False),
    help="Folder for registrations and call records (default: SITE/.zongji-state).",
)
@click.option(
    "--advertise",
    metavar="HOST",
    help="The address phones are told to send to, when listening on 0.0.0.0 (default: this "
    "computer's address on its main network).",
)
@click.option("--json-events", is_flag=True, help="Print every event as one JSON object per line, for scripts.")
@click.option(
    "--limits",
    type=click.Choice(["host", "device"]),
    default="host",
    show_default=True,
    help="Table sizes: a PC's (thousands of transactions and calls), or the device's own "
    "(64 transactions, 32 calls), to see how the appliance behaves under load.",
)
@click.option(
    "--rtp",
    "rtp_port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="UDP port of the attendant's audio (RTP), on the --sip address (default: the SIP port + 2 "
    "when free, else any; 0 takes any free port).",
)
@serve_admin_options("as a device does on Wi-Fi", "the one in STATE/admin-token, made the first time")
def run_cmd(site, sip, state, advertise, json_events, limits, rtp_port, admin, token):
    """Run SITE's switchboard on this computer, until Ctrl-C.

    \b
    zongji run                          ./site.toml, else the built-in example branch
    zongji run shanghai                 on 127.0.0.1:5060: softphones on this computer
    zongji run shanghai --sip 0.0.0.0:5060    desk phones and softphones on the LAN

    This is host mode: the SIP switch the device runs (registrar, calls between phones, ring
    groups, follow-me), with this computer's network and clock. Any SIP softphone (Linphone,
    MicroSIP, Zoiper, baresip ...) registers to it: user name = an extension number, password =
    that row's secret in the staff CSV, domain / registrar / proxy = HOST:PORT, transport UDP.
    Then dial another extension or a ring group; each registration and call is printed.

    Calls to the main number and the menus' short numbers are answered by the attendant, which
    plays SITE/prompts (make them with `zongji prompts build SITE`), hears keys (RFC 4733,
    SIP INFO or tones) and puts the caller through; its audio uses the --rtp port.

    Registrations and call records are kept in --state and survive a restart; `zongji cdr`
    lists the calls. The site is checked first: one with errors is refused.

    With --admin the switch also answers the admin protocol, as a device on Wi-Fi does: it
    starts with SITE, keeps its bundle and prompts in --state, and `zongji sync` changes it
    live (calls in progress go on). A restart starts from SITE again.
    """
    from zongji_companion import hostmode

    host, port = parse_sip(sip)
    if site is None and not os.path.exists("site.toml"):
        state = state_for(None, state)
        site = os.path.join(state, "example")
        if not os.path.exists(os.path.join(site, "site.toml")):
            write_example(site)
        if not json_events:
            click.echo(
                "no SITE and no ./site.toml: running the built-in example branch from %s "
                "(write your own with `zongji init DIR`)" % site
            )
    site = site or "."
    runtime, bundle = load_site(site)
    admin_at = parse_sip(admin, "--admin") if admin else None
    csv_path = os.path.join(site_folder(site), sitefiles.load(site).csv_name)
    sample = next((e for e in runtime.directory.records() if e.has_phone()), None)

    def hint(server):
        user = "%s (%s) or any extension" % (sample.number, sample.name) if sample else "an extension number"
        return [
            "register a softphone: user %s, password = its secret in %s," % (user, csv_path),
            "server / domain / registrar %s, transport UDP; then call another extension" % server,
        ]

    try:
        hostmode.serve(
            runtime,
            host,
            port,
            state_for(site, state),
            advertise=advertise,
            json_events=json_events,
            hint=hint,
            limits=hostmode.LIMITS[limits],
            rtp_port=rtp_port,
            prompts_dir=site_folder(site),
            admin=admin_at,
            token=token,
            bundle=bundle,
        )
    except hostmode.HostModeError as e:
        raise ZongjiError(str(e)) from None
