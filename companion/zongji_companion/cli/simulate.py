"""`zongji simulate`: play a call through the device's own core on a virtual clock."""

import json
import os

import click

from zongji_companion.cli import load_site, main, site_folder

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
    d = result.decision
    what = result.outcome or "nothing happened"
    if d is not None and d.action == "refuse":
        what += " %d %s" % (d.status, d.reason)
    if result.attendant and result.attendant.get("target"):
        what += " to %s %s" % tuple(result.attendant["target"][:2])
    click.echo("result: %s" % what)


@main.command()
@click.argument("site", default=".", type=click.Path())
@click.option(
    "--call",
    "call",
    metavar="NUMBER",
    help="An outside call to NUMBER: a DID from [trunk.did]; anything else reaches the main number.",
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
@click.option(
    "--batch",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="Simulate many calls, one a line ('from=201 dial=600', 'call=02155550100 keys=2'; '-' reads "
    "stdin), and print one JSON object a line. Exit 1 if a line could not be simulated.",
)
def simulate(site, call, caller, dial, keys, at, as_json, interactive, batch):
    """Play a call through SITE with the device's own core and print every step.

    \b
    Outside caller:  zongji simulate SITE --call 02155550100 --keys 2 --at "2026-11-27 20:30"
    Staff call:      zongji simulate SITE --from 201 --dial 600
    Interactive:     zongji simulate SITE          (type keys as the caller; Enter alone waits)
    Many calls:      zongji simulate SITE --batch calls.txt      (JSON lines, for scripts)

    Nothing is sent anywhere. The switch's own call decision says what happens (whom it rings,
    in which stages, or what it answers and why), assuming every phone is registered and the
    provider is up; where the attendant answers (a menu, the main number, a PIN prompt), the
    core's attendant walks it on a virtual clock with your --keys, as the switch does, and
    shows whom a transfer rings.
    """
    from zongji_companion import simulate as sim

    if batch is not None:
        runtime, _ = load_site(site)
        return _run_batch(sim, runtime, batch, _parse_at(at, runtime), _built(site))

    if (caller is None) != (dial is None):
        raise click.UsageError("--from and --dial go together: --from 201 --dial 305")
    if caller is not None and call is not None:
        raise click.UsageError("use either --call (outside caller) or --from/--dial (staff call)")
    runtime, _ = load_site(site)
    tm = _parse_at(at, runtime)
    try:
        if keys is not None:
            sim.parse_keys(keys)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--keys") from None
    if not as_json:
        click.echo("at %04d-%02d-%02d %02d:%02d %s, branch %s" % (tm[:5] + (_DAYS[tm[5]], runtime.branch["name"])))
    built = _built(site)
    if caller is not None:
        result = sim.internal(runtime, caller, dial, tm, keys or "", built)
    elif interactive or (keys is None and call is None and not as_json and click.get_text_stream("stdin").isatty()):
        if as_json or keys is not None:
            raise click.UsageError("--interactive reads keys from the terminal: leave out --keys and --json")
        result = sim.interactive(runtime, tm, click.prompt, click.echo, call or "", built)
    else:
        result = sim.inbound(runtime, call or "", tm, keys or "", built)
    _print_result(result, as_json, tm)


def _built(site):
    """The sound prompts built in SITE/prompts (`zongji prompts build`), as the device has them."""
    from zongji.call.prompts import HOLD, RINGBACK, file_name

    if not site:
        return set()  # the example built in: no prompts folder
    root = site_folder(site)
    return {pid for pid in (RINGBACK, HOLD) if os.path.exists(os.path.join(root, file_name(pid)))}


def _run_batch(sim, runtime, lines, tm, built=()):
    failed = 0
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = dict(item.partition("=")[::2] for item in text.split())
        try:
            if fields.keys() - {"from", "dial", "call", "keys"} or ("from" in fields) != ("dial" in fields):
                raise ValueError("write 'from=EXT dial=DIGITS' or 'call=NUMBER', with keys=KEYS if you like")
            keys = sim.parse_keys(fields.get("keys", ""))
            if "from" in fields:
                result = sim.internal(runtime, fields["from"], fields["dial"], tm, keys, built)
            else:
                result = sim.inbound(runtime, fields.get("call", ""), tm, keys, built)
            out = result.as_dict()
        except ValueError as e:
            failed += 1
            out = {"error": "line %d: %s" % (n, e)}
        out["input"] = text
        click.echo(json.dumps(out, ensure_ascii=False))
    if failed:
        raise SystemExit(1)
