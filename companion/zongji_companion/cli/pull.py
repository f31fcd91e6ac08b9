"""`zongji pull`: back a device up into a site folder (zongji_companion/siterebuild.py)."""

import hashlib
import json
import os
import sys
import time

import click

from zongji_companion.cli import ZongjiError, main, plural, write_whole
from zongji_companion.cli.sync import connect, device_options, failed

BACKUP = "backup"  # DIR/backup: what came from the device, byte for byte


def _safe_rel(path, what):
    """A path from the device's site, as a file under DIR: relative, no '..', no drive."""
    norm = os.path.normpath(path) if isinstance(path, str) and path else ""
    if not norm or os.path.isabs(norm) or norm.startswith("..") or ":" in norm or norm.startswith(("/", "\\")):
        raise ZongjiError("the device's site names %s %r, which is not a file inside a site folder: "
                          "nothing was written" % (what, path))  # fmt: skip
    return norm


def _is_stem(stem):
    """A prompt file's stem as the core names them (call/prompts.py file_name)."""
    ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~"
    return isinstance(stem, str) and 0 < len(stem) <= 120 and stem[0] != "." and all(c in ok for c in stem)


def _wav(ulaw):
    """8 kHz µ-law (as the device plays it) -> a 16-bit WAV a person can listen to and sox reads."""
    import io
    import wave

    from zongji.media import g711

    pcm = bytearray()
    for code in ulaw:
        v = g711.ulaw_to_linear(code)
        pcm += (v & 0xFFFF).to_bytes(2, "little")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(pcm))
    return buf.getvalue()


@main.command("pull")
@device_options
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="The folder to write the site into (made if missing).",
)
@click.option("--force", is_flag=True, help="Overwrite a site already in DIR (site.toml, the staff CSV, prompts/).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as one JSON object.")
def pull_cmd(url, token, token_file, out, force, as_json):
    """Back up a device into DIR: its bundle, prompt files and call records, and an editable
    site rebuilt from the bundle, so a lost PC folder is never the end.

    \b
    zongji pull --device http://192.168.1.10 -o shanghai
    zongji check shanghai && zongji sync shanghai --device http://192.168.1.10

    \b
    DIR gets:
      site.toml, staff.csv   rebuilt from the bundle: `zongji bundle DIR` gives the device's
                             version again. Comments of the original are not in a bundle.
      prompts/*.ulaw         the prompt files the device plays (a sync sends none of them back)
      backup/site.zjb        the bundle exactly as the device stores it
      backup/cdr.jsonl       the call records (`zongji cdr --state DIR/backup`)
      backup/status.json     the device's status at the time

    The device keeps only hashes of SIP secrets and PINs, so the staff CSV holds those
    ("ha1:..." and "hash:..."): phones keep working, and `zongji check` accepts them. They
    are bound to [staff] realm (and a PIN to its extension's number): change either, and
    write that phone's password or PIN in the CSV again. Recordings named in [sounds] or a
    menu's `audio` are written back as 8 kHz WAV files made from the device's prompt files.
    """
    from zongji.call import prompts as core
    from zongji.site.bundle import BundleError

    from zongji_companion import devicelink, siterebuild

    dev = connect(url, token, token_file)
    try:
        status = dev.status()
        data = dev.bundle()
        if data is None:
            raise ZongjiError("the device has no site yet: nothing to pull (sync one with `zongji sync SITE`)")
        try:
            site, rows, header = siterebuild.read_bundle(data)
        except BundleError as e:
            raise ZongjiError("the device's bundle can't be read: %s; nothing was written" % e) from None
        staff_name = _safe_rel((site.get("staff") or {}).get("file") or "staff.csv", "the staff file")
        target = os.path.join(out, "site.toml")
        if not force:
            there = [n for n in ("site.toml", staff_name, "prompts") if os.path.exists(os.path.join(out, n))]
            if there:
                raise ZongjiError("%s already holds %s: pull into a new folder, or add --force to overwrite "
                                  "them" % (out, ", ".join(there)))  # fmt: skip
        listed = dev.prompts()
        prompts = {}
        with click.progressbar(
            sorted(listed), label="prompts", file=sys.stderr, hidden=as_json or len(listed) < 4
        ) as bar:
            for stem in bar:
                if not _is_stem(stem):
                    raise ZongjiError("the device lists a prompt named %r, not a file name: nothing was written" % stem)
                body = dev.prompt(stem)
                if hashlib.sha256(body).hexdigest() != listed[stem]:
                    raise ZongjiError("prompt %s changed or was damaged on the way: pull again" % stem)
                prompts[stem] = body
        records = dev.cdr()
    except devicelink.DeviceError as e:
        raise failed(e) from None
    finally:
        dev.close()

    # everything is here: now write, each file whole
    written = []

    def put(rel, blob):
        write_whole(os.path.join(out, rel), blob)
        written.append(rel)

    put(os.path.join(BACKUP, "site.zjb"), data)
    put(os.path.join(BACKUP, "cdr.jsonl"), b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n"
                                                   for r in records))  # fmt: skip
    status["pulled_at"] = int(time.time())
    put(os.path.join(BACKUP, "status.json"), json.dumps(status, ensure_ascii=False, indent=1).encode() + b"\n")
    for stem, body in sorted(prompts.items()):
        put(os.path.join(core.DIR, stem + core.EXT), body)
    note = ["pulled from %s on %s" % (url, time.strftime("%Y-%m-%d %H:%M", time.localtime()))]
    put("site.toml", siterebuild.site_toml(site, header, note).encode())
    put(staff_name, siterebuild.staff_csv(rows).encode())
    recordings = _recordings(out, site, prompts, put)

    # the proof: the rebuilt folder bundles to the device's version
    from zongji_companion.cli import load_site

    try:
        _, again = load_site(out)
        same = again == data
        why = "" if same else "it differs (another zongji version, or another time zone database?)"
    except ZongjiError as e:
        same, why = False, str(e)
    report = {
        "device": url,
        "folder": out,
        "version": header["sha256"],
        "staff": header["count"],
        "prompts": len(prompts),
        "recordings": recordings,
        "records": len(records),
        "files": written,
        "rebuilds_same_version": same,
    }
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo("pulled %s (version %s) into %s: %s, %s, %s" % (
            site.get("branch", {}).get("name") or "the site", header["sha256"][:12], target,
            plural(header["count"], "staff row"), plural(len(prompts), "prompt file"),
            plural(len(records), "call record")))  # fmt: skip
        if recordings:
            click.echo("  recordings written back as WAV: %s" % ", ".join(recordings))
        if same:
            click.echo("  checked: `zongji bundle %s` gives the device's version again" % out)
    if not same:
        click.echo("zongji: warning: the rebuilt site does not bundle to the device's version: %s. "
                   "backup/site.zjb is the exact copy." % why, err=True)  # fmt: skip


def _recordings(out, site, prompts, put):
    """Recordings the site names ([sounds], a menu's audio) that are not in DIR, written back
    from the device's prompt file of the same id as a WAV, so `zongji check` finds them."""
    from zongji.call import prompts as core
    from zongji.site.model import Site

    done = []
    try:
        ids = core.prompt_ids(Site(site))
    except Exception:  # noqa: BLE001 - a site the core reads differently: no recordings then
        return done
    for pid, _text, recording in ids:
        if not recording:
            continue
        stem = core.file_name(pid)[len(core.DIR) + 1 : -len(core.EXT)]
        rel = _safe_rel(recording, "a recording")
        if stem in prompts and not os.path.exists(os.path.join(out, rel)):
            put(rel, _wav(prompts[stem]))
            done.append(rel)
    return done
