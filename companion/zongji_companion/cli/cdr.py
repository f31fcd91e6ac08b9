"""`zongji cdr`: the call records `zongji run` kept."""

import json
import os

import click

from zongji_companion.cli import ZongjiError, load_site, main, plural, state_for
from zongji_companion.cli.sync import token_options

# A device's records made before NTP set its clock count seconds since boot
# (firmware/zongji/shell/clock.py): any start before 2001-09-09 is one of those.
UNSYNCED_BEFORE = 10**9


def _clock(seconds):
    return (
        "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)
        if seconds >= 3600
        else ("%d:%02d" % (seconds // 60, seconds % 60))
    )


CSV_COLUMNS = ("start", "answer", "end", "duration", "from", "to", "outcome", "status", "route", "reason")


@main.command("cdr")
@click.argument("site", required=False, type=click.Path())
@click.option("--state", type=click.Path(file_okay=False), help="The folder `zongji run` keeps its state in.")
@click.option(
    "--device",
    "url",
    metavar="URL",
    help="Ask a device for its records instead (http://HOST:PORT, a serial port, auto, socket://...; "
    "with --token / ZONGJI_TOKEN, as `zongji sync`).",
)
@token_options
@click.option("--since", type=int, metavar="UNIX_SECONDS", help="Only calls that started then or later.")
@click.option("--last", type=click.IntRange(min=1), metavar="N", help="Only the newest N calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the records as CSV (one row per call, for a spreadsheet).")
def cdr_cmd(site, state, url, token, token_file, since, last, as_json, as_csv):
    """List the calls `zongji run` recorded for SITE (default: this folder, or the example),
    or, with --device, the calls a device recorded.

    
    zongji cdr shanghai                          host mode's records
    zongji cdr --device http://192.168.1.10      the device's, over the network
    zongji cdr --device /dev/ttyUSB0 --csv > calls.csv

    One line per call, oldest first, in the branch's local time: when, who called, what they
    dialled, the outcome (answered, busy, no-answer, cancelled, failed, refused), the final SIP
    status, how long they talked and how the call was routed.
    """
    from zongji.call.cdr import CdrLog

    if site is None and os.path.exists("site.toml"):
        site = "."
    skipped = 0
    if url:
        from zongji_companion import devicelink
        from zongji_companion.cli.sync import connect, failed

        dev = connect(url, token, token_file)
        try:
            records = dev.cdr(since)
        except devicelink.DeviceError as e:
            raise failed(e) from None
        finally:
            dev.close()
        path = url
    else:
        folder = state_for(site, state)
        path = os.path.join(folder, "cdr.jsonl")
        log = CdrLog(max_records=1000000)  # the file's own length is the limit here
        try:
            with open(path, "rb") as f:
                log.load(f.read())
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ZongjiError("can't read %s: %s" % (path, e.strerror)) from None
        records = log.records(since)
        skipped = log.skipped
    if last:
        records = records[-last:]
    if as_json:
        out = {"file" if not url else "device": path, "records": records, "skipped": skipped}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if as_csv:
        import csv
        import sys

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in records:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in CSV_COLUMNS])
        return
    if skipped:
        click.echo("zongji: warning: %s: skipped %s" % (path, plural(skipped, "damaged line")), err=True)
    if not records:
        click.echo("no calls recorded %s yet" % ("on the device" if url else "in %s (`zongji run` writes them)" % path))
        return
    local = None
    zone = "(local)"
    try:  # the branch's own time zone, if the site loads; else this computer's
        runtime, _ = load_site(site or os.path.join(state_for(site, state), "example"))
        local = runtime.local_time
        from zongji.site.hours import utc_offset

        off = utc_offset(records[-1]["start"], runtime.tz)
        zone = "UTC%s%02d:%02d" % ("+" if off >= 0 else "-", abs(off) // 3600, abs(off) % 3600 // 60)
    except ZongjiError:
        pass
    row = "%%-16s  %%-%ds  %%-%ds  %%-9s  %%6s  %%7s  %%s" % (
        max([4] + [len(r["from"]) for r in records]),
        max([2] + [len(r["to"]) for r in records]),
    )
    # the branch's local time, labelled, the clock host mode's log lines carry too
    click.echo(row % ("start " + zone, "from", "to", "outcome", "status", "talked", "route"))
    unsynced = 0
    for r in records:
        if r["start"] < UNSYNCED_BEFORE:
            unsynced += 1
            when = "boot +" + _clock(r["start"])
        elif local is not None:
            when = "%04d-%02d-%02d %02d:%02d" % local(r["start"])[:5]
        else:
            import time

            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["start"]))
        talked = _clock(r["duration"]) if r["answer"] is not None else "-"
        status = str(r["status"]) if r["status"] else "-"
        route = r["route"] + (": " + r["reason"] if r.get("reason") and r["outcome"] != "answered" else "")
        click.echo((row % (when, r["from"], r["to"], r["outcome"], status, talked, route)).rstrip())
    click.echo(plural(len(records), "call") + (" (times are this computer's)" if local is None else ""))
    if unsynced:
        click.echo(
            "%s made before the device's clock was set (no NTP yet): their times count from its boot"
            % plural(unsynced, "call was" if unsynced == 1 else "call")
        )
