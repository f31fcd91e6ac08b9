"""The `zongji` command line: one handler per command over the site files and the core.

Errors the user can act on are `ZongjiError` (shown as `zongji: message`, exit 1); click's
usage errors exit 2; anything unexpected becomes `zongji: internal error: ...` with exit 3
(set ZONGJI_DEBUG=1 to see the traceback instead).
"""

import csv
import io
import json
import os
import secrets
import string

import click

from zongji_companion import sitefiles

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template")
TEMPLATE_FILES = ("site.toml", "staff.csv")
SECRET_LENGTH = 16
PIN_LENGTH = 6
# letters and digits only: a cell starting with - + = @ is a formula to Excel
_SECRET_ALPHABET = string.ascii_letters + string.digits


def _version():
    try:
        from importlib.metadata import version

        return version("zongji")
    except Exception:  # pragma: no cover - running from a source tree that was never installed
        import zongji

        return zongji.__version__


class ZongjiError(click.ClickException):
    """A problem the user can fix; printed as `zongji: message`, exit code 1."""

    def show(self, file=None):
        click.echo("zongji: %s" % self.format_message(), err=True)


class _Group(click.Group):
    """Turns an unexpected exception into one line and exit code 3: the last resort."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            if os.environ.get("ZONGJI_DEBUG"):
                raise
            click.echo(
                "zongji: internal error: %s: %s (this is a bug in zongji; run again with "
                "ZONGJI_DEBUG=1 to see where, and please report it)" % (type(e).__name__, e),
                err=True,
            )
            ctx.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="zongji")
def main():
    """zongji (总机): a switchboard for a small branch office.

    An ESP32 on the branch LAN answers outside calls ("Sales press 1, Support press 2,
    operator press 0"), lets staff dial each other by short numbers and reach colleagues'
    mobiles, with no cloud in the loop. This program keeps its configuration: a folder with
    site.toml (menus, ring groups, hours, trunk) and a staff CSV (one row per person).

    \b
    The workflow:
      zongji init shanghai       write a complete example branch to start from
      zongji check shanghai      every problem as file:line, with how to fix it
      zongji simulate shanghai   play a call through the menus before anyone hears it
      zongji run shanghai        the switchboard on this computer: softphones register and call
      zongji bundle / sync       compile the folder and send it to the device

    Run `zongji COMMAND --help` for the details of a command.
    """


# ---------------------------------------------------------------- check


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _counts(loaded):
    site = loaded.site or {}
    return {
        "extensions": len(loaded.extensions),
        "groups": len(site.get("groups") or {}),
        "menus": len(site.get("menus") or {}),
    }


@main.command()
@click.argument("site", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the problems as one JSON object.")
@click.pass_context
def check(ctx, site, as_json):
    """Check a site folder (default: the current one) and list every problem.

    SITE is a folder holding site.toml and its staff CSV, or the .toml file itself. Each
    problem is printed as `file:line: error|warning: message`. Exit code 0 when there are
    no errors (warnings allowed), 1 when there are.
    """
    loaded, problems = sitefiles.check_site(site)
    report = loaded.report(problems)
    errors = sum(1 for p in report if p["level"] == "error")
    warnings = len(report) - errors
    counts = _counts(loaded)
    if as_json:
        out = {
            "site": site,
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "counts": counts,
            "problems": report,
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for p in report:
            click.echo("%s:%d: %s: %s" % (p["file"], p["line"], p["level"], p["message"]))
        what = "%s, %s, %s" % (
            _plural(counts["extensions"], "extension"),
            _plural(counts["groups"], "group"),
            _plural(counts["menus"], "menu"),
        )
        if errors:
            click.echo("%s, %s" % (_plural(errors, "error"), _plural(warnings, "warning")))
        elif warnings:
            click.echo("site OK with %s: %s" % (_plural(warnings, "warning"), what))
        else:
            click.echo("site OK: %s" % what)
    if errors:
        ctx.exit(1)


# ---------------------------------------------------------------- init


def _random_secret():
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def _random_pin():
    # no leading zero: a spreadsheet would drop it
    return secrets.choice("123456789") + "".join(secrets.choice(string.digits) for _ in range(PIN_LENGTH - 1))


def _fresh_staff(text):
    """The template's staff CSV with a new random SIP secret and PIN wherever it has one."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    fresh = {"secret": _random_secret, "pin": _random_pin}
    for row in rows[1:]:
        for j, col in enumerate(header):
            if col in fresh and j < len(row) and row[j]:
                row[j] = fresh[col]()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue(), len(rows) - 1


def _write_example(directory):
    """The embedded example branch into `directory`, fresh secrets; returns the staff count."""
    try:
        os.makedirs(directory, exist_ok=True)
        texts = {}
        for name in TEMPLATE_FILES:
            with open(os.path.join(TEMPLATE, name), encoding="utf-8") as f:
                texts[name] = f.read()
        texts["staff.csv"], staff = _fresh_staff(texts["staff.csv"])
        for name in TEMPLATE_FILES:
            # utf-8-sig for the CSV: Excel on Windows reads Chinese names right only with a BOM
            enc = "utf-8-sig" if name.endswith(".csv") else "utf-8"
            with open(os.path.join(directory, name), "w", encoding=enc, newline="\n") as f:
                f.write(texts[name])
    except OSError as e:
        raise ZongjiError("can't write %s: %s" % (e.filename or directory, e.strerror)) from None
    return staff


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--force", is_flag=True, help="Write into DIRECTORY even if it is not empty.")
def init(directory, force):
    """Write a complete, working example branch into DIRECTORY.

    A Shanghai office: twelve staff, a main menu with a support submenu, sales and support
    ring groups, opening hours with the 2026 National Day holiday, dial-out classes and a
    trunk to a test provider on this computer. Every SIP secret and PIN is freshly random.
    An existing non-empty DIRECTORY is refused unless --force (which overwrites site.toml
    and the staff CSV and leaves other files alone).
    """
    if os.path.isdir(directory) and os.listdir(directory) and not force:
        raise ZongjiError(
            "%s is not empty: pick a new folder, or add --force to overwrite its site.toml and staff.csv" % directory
        )
    staff = _write_example(directory)
    click.echo(
        "wrote %s  (the branch: menus, ring groups, hours, dial-out, trunk)" % os.path.join(directory, "site.toml")
    )
    click.echo(
        "wrote %s  (%d staff, each with a fresh random SIP secret)" % (os.path.join(directory, "staff.csv"), staff)
    )
    click.echo("next: zongji check %s" % directory)


# ---------------------------------------------------------------- shared: a site the core accepts


def _load_site(path):
    """check_site + the device's own bundle loader: what simulate runs is what the device runs.

    Returns (runtime Site, bundle bytes). Raises ZongjiError listing the errors, if any."""
    from zongji.site import bundle

    loaded, problems = sitefiles.check_site(path)
    errors = [p for p in loaded.report(problems) if p["level"] == "error"]
    if errors:
        lines = ["%s:%d: error: %s" % (p["file"], p["line"], p["message"]) for p in errors[:20]]
        more = "\n... and %d more" % (len(errors) - 20) if len(errors) > 20 else ""
        raise ZongjiError(
            "the site has %s; fix them first (zongji check %s):\n%s%s"
            % (_plural(len(errors), "error"), path, "\n".join(lines), more)
        )
    data = bundle.encode(loaded.site, loaded.extensions)
    try:
        return bundle.load(data), data
    except bundle.BundleError as e:  # the core disagreeing with itself is a bug, say so
        raise ZongjiError("the compiled bundle does not load: %s" % e) from None


# ---------------------------------------------------------------- bundle


@main.command("bundle")
@click.argument("site", default=".", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the bundle here (default: SITE/site.zjb).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def bundle_cmd(site, output, as_json):
    """Compile SITE into the compact bundle the device loads.

    The bundle is canonical JSON lines with a SHA-256 version over its content: the same site
    always gives the same bytes and the same version, which `zongji status` shows on the
    device. It is checked first and loaded back through the device's own loader before it is
    written, so a bundle that this command writes is one the device accepts.
    """
    runtime, data = _load_site(site)
    if output is None:
        output = os.path.join(site if os.path.isdir(site) else os.path.dirname(site) or ".", "site.zjb")
    tmp = output + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, output)
    except OSError as e:
        raise ZongjiError("can't write %s: %s" % (output, e.strerror)) from None
    info = {
        "file": output,
        "bytes": len(data),
        "version": runtime.version,
        "extensions": len(runtime.directory),
        "site": runtime.branch.get("name"),
    }
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        click.echo(
            "wrote %s: %d bytes, %s, version %s"
            % (output, len(data), _plural(info["extensions"], "extension"), runtime.version[:16])
        )


# ---------------------------------------------------------------- simulate

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _parse_at(text, runtime):
    """'2026-11-27 20:30' (local time at the branch) -> tm tuple; None -> now at the branch."""
    import datetime
    import time

    if text is None:
        return runtime.local_time(int(time.time()))
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            d = datetime.datetime.strptime(text.strip(), fmt)
            return (d.year, d.month, d.day, d.hour, d.minute, d.weekday())
        except ValueError:
            continue
    raise click.BadParameter(
        "write the branch's local time as 'YYYY-MM-DD HH:MM', e.g. '2026-11-27 20:30'", param_hint="--at"
    )


def _print_result(result, as_json, tm):
    if as_json:
        out = result.as_dict()
        out["at"] = "%04d-%02d-%02d %02d:%02d" % tm[:5]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for step in [] if result.printed else result.steps:
        click.echo("%7.1fs  %s" % (step.t_ms / 1000.0, step.text))
    click.echo("result: %s" % (result.outcome or "nothing happened"))


@main.command()
@click.argument("site", default=".", type=click.Path())
@click.option(
    "--call",
    "call",
    metavar="NUMBER",
    help="An outside call to NUMBER: a DID from "
    "[trunk.did], a menu's short number, or anything else for the main menu.",
)
@click.option("--from", "caller", metavar="EXT", help="A staff call from extension EXT (use with --dial).")
@click.option(
    "--dial",
    metavar="DIGITS",
    help="What the staff member dials: a short number, an emergency number, or the outside prefix and a number.",
)
@click.option(
    "--keys",
    default=None,
    metavar="KEYS",
    help="Keys the caller presses, e.g. '2' or '9,5646#': ',' waits a second, '.' waits for the next timeout.",
)
@click.option(
    "--at",
    "at",
    metavar="'YYYY-MM-DD HH:MM'",
    help="Local time at the branch (default: now). Opening hours and holidays are decided by it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the call's steps as JSON.")
@click.option(
    "-i",
    "--interactive",
    is_flag=True,
    help="Read the caller's keys line by line from the "
    "terminal (the default when no --keys/--call is given and stdin is a terminal).",
)
def simulate(site, call, caller, dial, keys, at, as_json, interactive):
    """Play a call through SITE with the device's own core and print every step.

    \b
    Outside caller:  zongji simulate SITE --call 02155550100 --keys 2 --at "2026-11-27 20:30"
    Staff call:      zongji simulate SITE --from 201 --dial 600
    Interactive:     zongji simulate SITE          (type keys as the caller; Enter alone waits)

    Nothing is sent anywhere: the dial plan, menus, hours and class of service are evaluated
    exactly as the device would, on a virtual clock.
    """
    from zongji_companion import simulate as sim

    if (caller is None) != (dial is None):
        raise click.UsageError("--from and --dial go together: --from 201 --dial 305")
    if caller is not None and call is not None:
        raise click.UsageError("use either --call (outside caller) or --from/--dial (staff call)")
    runtime, _ = _load_site(site)
    tm = _parse_at(at, runtime)
    try:
        if keys is not None:
            sim.parse_keys(keys)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--keys") from None
    if not as_json:
        click.echo("at %04d-%02d-%02d %02d:%02d %s, branch %s" % (tm[:5] + (_DAYS[tm[5]], runtime.branch["name"])))
    if caller is not None:
        result = sim.internal(runtime, caller, dial, tm, keys or "")
    elif interactive or (keys is None and call is None and not as_json and click.get_text_stream("stdin").isatty()):
        if as_json or keys is not None:
            raise click.UsageError("--interactive reads keys from the terminal: leave out --keys and --json")
        result = sim.interactive(runtime, tm, click.prompt, click.echo, call or "")
    else:
        result = sim.inbound(runtime, call or "", tm, keys or "")
    _print_result(result, as_json, tm)


# ---------------------------------------------------------------- run (host mode) and cdr

STATE_DIR = ".zongji-state"


def _site_folder(site):
    return site if os.path.isdir(site) or not site.endswith(".toml") else os.path.dirname(site) or "."


def _state_for(site, state):
    """The state folder: --state, else SITE/.zongji-state, else ./.zongji-state (no SITE)."""
    if state:
        return state
    return os.path.join(_site_folder(site), STATE_DIR) if site else STATE_DIR


def _parse_sip(text):
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
            "write HOST:PORT, e.g. 127.0.0.1:5060, or 0.0.0.0:5060 for the LAN", param_hint="--sip"
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:  # a name such as localhost: listen on (and advertise) its address
            host = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]
        except (OSError, UnicodeError):
            raise click.BadParameter("can't find the address of %s" % host, param_hint="--sip") from None
    return host, int(port)


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
def run_cmd(site, sip, state, advertise, json_events, limits):
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

    Registrations and call records are kept in --state and survive a restart; `zongji cdr`
    lists the calls. The site is checked first: one with errors is refused.
    """
    from zongji_companion import hostmode

    host, port = _parse_sip(sip)
    if site is None and not os.path.exists("site.toml"):
        state = _state_for(None, state)
        site = os.path.join(state, "example")
        if not os.path.exists(os.path.join(site, "site.toml")):
            _write_example(site)
        if not json_events:
            click.echo(
                "no SITE and no ./site.toml: running the built-in example branch from %s "
                "(write your own with `zongji init DIR`)" % site
            )
    site = site or "."
    runtime, _ = _load_site(site)
    csv_path = os.path.join(_site_folder(site), sitefiles.load(site).csv_name)
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
            _state_for(site, state),
            advertise=advertise,
            json_events=json_events,
            hint=hint,
            limits=hostmode.LIMITS[limits],
        )
    except hostmode.HostModeError as e:
        raise ZongjiError(str(e)) from None


def _clock(seconds):
    return (
        "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)
        if seconds >= 3600
        else ("%d:%02d" % (seconds // 60, seconds % 60))
    )


@main.command("cdr")
@click.argument("site", required=False, type=click.Path())
@click.option("--state", type=click.Path(file_okay=False), help="The folder `zongji run` keeps its state in.")
@click.option("--last", type=click.IntRange(min=1), metavar="N", help="Only the newest N calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as one JSON object.")
def cdr_cmd(site, state, last, as_json):
    """List the calls `zongji run` recorded for SITE (default: this folder, or the example).

    One line per call, oldest first, in the branch's local time: when, who called, what they
    dialled, the outcome (answered, busy, no-answer, cancelled, failed, refused), the final SIP
    status, how long they talked and how the call was routed.
    """
    from zongji.call.cdr import CdrLog

    if site is None and os.path.exists("site.toml"):
        site = "."
    folder = _state_for(site, state)
    path = os.path.join(folder, "cdr.jsonl")
    log = CdrLog(max_records=1000000)  # the file's own length is the limit here
    try:
        with open(path, "rb") as f:
            log.load(f.read())
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ZongjiError("can't read %s: %s" % (path, e.strerror)) from None
    records = log.records()
    if last:
        records = records[-last:]
    if as_json:
        out = {"file": path, "records": records, "skipped": log.skipped}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if log.skipped:
        click.echo("zongji: warning: %s: skipped %s" % (path, _plural(log.skipped, "damaged line")), err=True)
    if not records:
        click.echo("no calls recorded in %s yet (`zongji run` writes them)" % path)
        return
    local = None
    try:  # the branch's own time zone, if the site loads; else this computer's
        runtime, _ = _load_site(site or os.path.join(folder, "example"))
        local = runtime.local_time
    except ZongjiError:
        pass
    row = "%%-16s  %%-%ds  %%-%ds  %%-9s  %%6s  %%7s  %%s" % (
        max([4] + [len(r["from"]) for r in records]),
        max([2] + [len(r["to"]) for r in records]),
    )
    click.echo(row % ("start", "from", "to", "outcome", "status", "talked", "route"))
    for r in records:
        if local is not None:
            when = "%04d-%02d-%02d %02d:%02d" % local(r["start"])[:5]
        else:
            import time

            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["start"]))
        talked = _clock(r["duration"]) if r["answer"] is not None else "-"
        status = str(r["status"]) if r["status"] else "-"
        click.echo((row % (when, r["from"], r["to"], r["outcome"], status, talked, r["route"])).rstrip())
    click.echo(_plural(len(records), "call") + (" (times are this computer's)" if local is None else ""))


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="zongji")
