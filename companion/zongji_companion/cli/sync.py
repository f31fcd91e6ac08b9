"""`zongji sync / status / pull`, and `cdr --device`: the CLI talking to a device.

Every command takes --device URL (or ZONGJI_DEVICE) and the admin token (--token,
--token-file or ZONGJI_TOKEN); devicelink.py opens the URL and signs each call.
"""

import hashlib
import json
import os
import sys
import time

import click

from zongji_companion.cli import ZongjiError, load_site, main, plural, site_folder

CACHE_ENV = "ZONGJI_CACHE"


def token_options(f):
    """--token and --token-file, for a command that talks to a device."""
    f = click.option(
        "--token-file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Read the admin token from FILE (e.g. the STATE/admin-token host mode writes).",
    )(f)
    f = click.option(
        "--token",
        metavar="TEXT",
        help="The device's admin token (default: ZONGJI_TOKEN). It signs each request; it is never sent.",
    )(f)
    return f


def device_options(f):
    f = token_options(f)
    f = click.option(
        "--device",
        "url",
        envvar="ZONGJI_DEVICE",
        required=True,
        metavar="URL",
        help="The device: http://HOST:PORT (Wi-Fi/LAN, or `zongji run --admin`), a serial port "
        "(/dev/ttyUSB0, COM3), `auto` (the first ESP32 USB-serial port) or socket://HOST:PORT. "
        "Also ZONGJI_DEVICE.",
    )(f)
    return f


def connect(url, token, token_file):
    from zongji_companion import devicelink

    try:
        return devicelink.connect(url, devicelink.read_token(token, token_file))
    except devicelink.DeviceError as e:
        raise ZongjiError(str(e)) from None


def failed(e):
    """A DeviceError as the ZongjiError the user reads, with what to do where the device's own
    words do not say it."""
    text = str(e)
    if getattr(e, "code", None) == "too-large":
        text += (
            "; that is more than this device takes: for a site, fewer staff or groups (`zongji check SITE "
            "--board NAME` shows its size against the board), or a board with PSRAM (zongji boards); for a "
            "prompt, a shorter recording"
        )
    return ZongjiError(text)


def _cache_dir():
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "zongji"
    )
    return os.path.join(base, "bundles")


def cached_bundle(version):
    """A bundle this computer synced or pulled before, by its version, or None."""
    if not version:
        return None
    try:
        with open(os.path.join(_cache_dir(), version + ".zjb"), "rb") as f:
            data = f.read()
    except OSError:
        return None
    from zongji.site import bundle as site_bundle

    try:  # the cache is only a copy: a damaged one is fetched again
        return data if site_bundle.load(data).version == version else None
    except (site_bundle.BundleError, ValueError):
        return None


def remember_bundle(data, version):
    folder = _cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, version + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(folder, version + ".zjb"))
    except OSError:
        pass  # only a cache: the next sync fetches the device's bundle instead


# ---------------------------------------------------------------- the diff


def bundle_parts(data):
    """(site dict, {number: row}) of bundle bytes."""
    lines = data.split(b"\n")
    site = json.loads(lines[1])
    rows = {}
    for line in lines[2:]:
        if line:
            row = json.loads(line)
            rows[str(row[0])] = row
    return site, rows


ROW_FIELDS = ("number", "name", "department", "secret", "secret", "mobile", "class", "follow_me", "pin", "keys")


def diff_bundles(old, new):
    """What a sync changes, in the admin's words: {"staff": {"added", "removed", "changed"},
    "site": [section names changed]}; old None (a blank device) counts everything as added."""
    new_site, new_rows = bundle_parts(new)
    old_site, old_rows = bundle_parts(old) if old is not None else ({}, {})
    changed = []
    for number in sorted(set(old_rows) & set(new_rows), key=_numeric):
        a, b = old_rows[number], new_rows[number]
        if a != b:
            fields = sorted({ROW_FIELDS[i] for i in range(min(len(a), len(b))) if a[i] != b[i]})
            changed.append({"number": number, "name": b[1], "fields": fields})
    sections = sorted(k for k in set(old_site) | set(new_site) if old_site.get(k) != new_site.get(k))
    return {
        "staff": {
            "added": [
                {"number": n, "name": new_rows[n][1]} for n in sorted(set(new_rows) - set(old_rows), key=_numeric)
            ],
            "removed": [
                {"number": n, "name": old_rows[n][1]} for n in sorted(set(old_rows) - set(new_rows), key=_numeric)
            ],
            "changed": changed,
        },
        "site": sections,
    }


NO_DIFF = {"staff": {"added": [], "removed": [], "changed": []}, "site": []}


def _numeric(n):
    return (len(n), n)


def local_prompts(site):
    """{stem: (sha256, path)} of SITE/prompts/*.ulaw (`zongji prompts build`)."""
    folder = os.path.join(site_folder(site), "prompts")
    out = {}
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return out
    for name in names:
        if name.endswith(".ulaw"):
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[name[:-5]] = (hashlib.sha256(f.read()).hexdigest(), path)
    return out


def _say_diff(d, prompts_put, prompts_gone):
    st = d["staff"]
    lines = []
    for e in st["added"]:
        lines.append("  + %s %s" % (e["number"], e["name"]))
    for e in st["removed"]:
        lines.append("  - %s %s" % (e["number"], e["name"]))
    for e in st["changed"]:
        lines.append("  ~ %s %s: %s" % (e["number"], e["name"], ", ".join(e["fields"])))
    if d["site"]:
        lines.append("  site.toml: %s changed" % ", ".join("[%s]" % s for s in d["site"]))
    if prompts_put:
        lines.append("  prompts: %s to send (%s)" % (len(prompts_put), ", ".join(sorted(prompts_put)[:6])
                                                     + (" ..." if len(prompts_put) > 6 else "")))  # fmt: skip
    if prompts_gone:
        lines.append("  prompts: %s to remove from the device" % len(prompts_gone))
    return lines


class _Bar:
    """One click progress bar over all the bytes a sync sends."""

    def __init__(self, total, quiet):
        self.total = total
        self.done = 0
        self.bar = None
        if not quiet and total > 4096:
            self.bar = click.progressbar(length=total, label="sending", file=sys.stderr)
            self.bar.__enter__()

    def part(self):
        start = self.done

        def step(sent, size):
            if self.bar is not None:
                self.bar.update(start + sent - self.done)
            self.done = start + sent

        return step

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@main.command("sync")
@click.argument("site", required=False, type=click.Path())
@device_options
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option("--dry-run", is_flag=True, help="Only show what would change; send nothing.")
@click.option("--full", is_flag=True, help="Send the whole bundle, not only the lines that changed.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print what was done as one JSON object (implies no prompts asked: use --yes).",
)
def sync_cmd(site, url, token, token_file, yes, dry_run, full, as_json):
    """Put SITE (default: this folder) on the device, live: calls in progress go on.

    \b
    zongji sync shanghai --device http://192.168.1.10        over Wi-Fi / LAN
    zongji sync shanghai --device /dev/ttyUSB0              over the USB cable
    zongji sync shanghai --device auto --dry-run            only show the changes

    It checks SITE (errors stop it), asks the device what it runs, and shows the difference:
    staff added (+), removed (-) and changed (~, with the fields), the site.toml sections
    changed, the prompt files to send or remove. Then, after you agree (or with --yes), it sends
    the prompts that differ (by SHA-256), then the bundle: only the lines that changed when the
    device runs a bundle this computer knows, else all of it, compressed. The device checks it
    as `zongji check` does and keeps the one before (`zongji` can roll back to it). If someone
    else synced the device in between, nothing is changed and you are told so.

    Exit codes: 0 synced (or nothing to do), 1 refused or failed (the device is unchanged).
    """
    from zongji.admin import delta as bundle_delta

    from zongji_companion import devicelink

    site = site or "."
    runtime, new = load_site(site)
    dev = connect(url, token, token_file)
    started = time.monotonic()
    try:
        status = dev.status()
        running = status.get("version")
        old = None
        if running and running != runtime.version:
            old = cached_bundle(running)
            if old is None:
                if not as_json:
                    click.echo(
                        "fetching the device's bundle %s… to compare (once per version)" % running[:12], err=True
                    )
                old = dev.bundle()
                if old is not None:
                    remember_bundle(old, running)
        elif running == runtime.version:
            old = new
        mine = local_prompts(site)
        theirs = dev.prompts()
        put = sorted(s for s in mine if theirs.get(s) != mine[s][0])
        gone = sorted(s for s in theirs if s not in mine)
        d = diff_bundles(old, new) if running != runtime.version else NO_DIFF
        report = {
            "device": url,
            "site": runtime.branch.get("name"),
            "from": running,
            "to": runtime.version,
            "diff": d,
            "prompts": {"send": put, "remove": gone},
            "applied": False,
        }
        same = running == runtime.version and not put and not gone
        if running == runtime.version:
            remember_bundle(new, running)  # the next sync of an edit sends only its lines
        if same:
            report["applied"] = True
            return _done(
                report, as_json, "the device already runs %s… (%s): nothing to send" % (running[:12], report["site"])
            )
        if not as_json:
            click.echo("%s: the device runs %s, this folder is %s" % (
                url, (running or "no site")[:12], runtime.version[:12]))  # fmt: skip
            for line in _say_diff(d, put, gone):
                click.echo(line)
        if dry_run:
            return _done(report, as_json, "dry run: nothing sent")
        if not yes:
            if as_json or not sys.stdin.isatty():
                raise ZongjiError("not applied: add --yes to sync without being asked (or --dry-run to only look)")
            if not click.confirm("apply these changes to the device?", default=False):
                raise ZongjiError("not applied")
        payload = None
        if old is not None and not full and running != runtime.version:
            payload = ("delta", bundle_delta.make(old, new))
        import zlib

        packed = zlib.compress(payload[1] if payload else new, 9)
        total = sum(os.path.getsize(mine[s][1]) for s in put) + (len(packed) if running != runtime.version else 0)
        bar = _Bar(total, as_json)
        try:
            for stem in put:
                with open(mine[stem][1], "rb") as f:
                    dev.put_prompt(stem, f.read(), progress=bar.part())
            if running != runtime.version:
                step = bar.part()
                path = "/bundle?base=%s&deflate=1%s" % (running or "none", "&delta=1" if payload else "")
                result = dev.json("PUT", path, packed, step)
                report["result"] = result
        finally:
            bar.close()
        for stem in gone:
            dev.delete_prompt(stem)
        after = dev.status()
        if after.get("version") != runtime.version:
            raise ZongjiError(
                "the device answered, but runs %s, not %s: sync again" % (after.get("version"), runtime.version)
            )
        remember_bundle(new, runtime.version)
        report["applied"] = True
        report["sent_bytes"] = getattr(dev.link, "sent", None)
        report["seconds"] = round(time.monotonic() - started, 3)
        what = "synced: the device runs %s… (%s, %s)" % (
            runtime.version[:12],
            report["site"],
            plural(len(runtime.directory), "extension"),
        )
        return _done(report, as_json, what)
    except devicelink.DeviceError as e:
        if e.code == "conflict":
            raise ZongjiError(
                "someone changed the device meanwhile (it now runs %s…): nothing was applied; run "
                "`zongji sync` again to see the new difference" % (e.data.get("device_version") or "?")[:12]
            ) from None
        raise failed(e) from None
    finally:
        dev.close()


def _done(report, as_json, text):
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(text)


# ---------------------------------------------------------------- status


def _ago(seconds):
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    if seconds < 172800:
        return "%d h" % (seconds // 3600)
    return "%d days" % (seconds // 86400)


@main.command("status")
@device_options
@click.option("--json", "as_json", is_flag=True, help="Print the device's whole status as JSON.")
def status_cmd(url, token, token_file, as_json):
    """What the device runs and how it is: version, uptime, heap, network, phones, trunk, calls.

    \b
    zongji status --device http://192.168.1.10
    zongji status --device /dev/ttyUSB0 --json
    """
    from zongji_companion import devicelink

    dev = connect(url, token, token_file)
    try:
        s = dev.status()
    except devicelink.DeviceError as e:
        raise failed(e) from None
    finally:
        dev.close()
    if as_json:
        click.echo(json.dumps(s, ensure_ascii=False, indent=2))
        return
    ver = s.get("version")
    staff = " (%s)" % plural(s["extensions"], "extension") if s.get("site") and "extensions" in s else ""
    click.echo("%s: %s%s" % (url, s.get("site") or "no site", staff))
    prev = ", previous %s…" % s["previous"][:12] if s.get("previous") else ""
    click.echo("  version   %s (%s)%s" % (ver[:12] + "…" if ver else "none", s.get("site_status"), prev))
    if s.get("last_sync"):
        ls = s["last_sync"]
        click.echo("  last sync %s %s ago" % (ls.get("how"), _ago(ls.get("ago_s", 0))))
    up = "  up        %s" % _ago(s.get("uptime_s", 0))
    if s.get("board"):
        up += " · %s" % s["board"]
    if s.get("heap_free") is not None:
        up += " · heap %d KB free of %d KB" % (s["heap_free"] // 1024, s["heap_total"] // 1024)
    click.echo(up)
    net = s.get("network")
    if net:
        click.echo("  network   %s %s" % (net.get("mode") or "", net.get("ip") or "down"))
    if "sip" in s:
        click.echo(
            "  sip       %s · %s · %s active"
            % (s["sip"], "trunk " + s["trunk"]["state"], plural(s.get("calls", 0), "call"))
        )
    phones = s.get("registered") or []
    click.echo("  phones    %s registered" % len(phones))
    for p in phones[:20]:
        agent = p.get("user_agent") or ""
        click.echo("            %-6s %-21s %s s left%s" % (p["number"], p["address"], p["expires_in"],
                                                          "  " + agent if agent else ""))  # fmt: skip
    if len(phones) > 20:
        click.echo("            ... and %d more (--json lists them)" % (len(phones) - 20))
    if s.get("fault"):
        click.echo("  fault     %s" % s["fault"])
    errs = s.get("errors") or []
    if errs:
        click.echo("  recent    " + errs[-1])
        for line in errs[-5:-1][::-1]:
            click.echo("            " + line)


# ---------------------------------------------------------------- rollback, reboot


@main.command("rollback")
@device_options
@click.option("--json", "as_json", is_flag=True, help="Print the device's answer as JSON.")
def rollback_cmd(url, token, token_file, as_json):
    """Put the device back on the site it ran before the last sync (again: forward).

    The device keeps the bundle before the running one; this swaps the two, live, as a sync
    does (calls in progress go on). A device also rolls back by itself at boot when its site
    does not load, and says so in `zongji status`.
    """
    from zongji_companion import devicelink

    dev = connect(url, token, token_file)
    try:
        got = dev.rollback()
    except devicelink.DeviceError as e:
        if e.code == "not-found":
            raise ZongjiError("the device keeps no previous site yet (it was synced once at most)") from None
        raise failed(e) from None
    finally:
        dev.close()
    if as_json:
        click.echo(json.dumps(got, ensure_ascii=False, indent=2))
    else:
        click.echo(
            "rolled back: the device runs %s… (was %s…)" % (got["version"][:12], (got["previous"] or "none")[:12])
        )


@main.command("reboot")
@device_options
def reboot_cmd(url, token, token_file):
    """Restart the device (it saves its registrations and call records first)."""
    from zongji_companion import devicelink

    dev = connect(url, token, token_file)
    try:
        dev.reboot()
    except devicelink.DeviceError as e:
        raise failed(e) from None
    finally:
        dev.close()
    click.echo("the device is restarting; `zongji status` answers again once it is up")
