"""`zongji prompts build`: the attendant's audio, one raw 8 kHz µ-law file per prompt."""

import json
import os

import click

from zongji_companion import promptfiles
from zongji_companion.cli import ZongjiError, load_site, main, plural, site_folder


@main.group("prompts")
def prompts_group():
    """The attendant's prompt files (SITE/prompts): what the device plays."""


@prompts_group.command("build")
@click.argument("site", default=".", type=click.Path())
@click.option("--force", is_flag=True, help="Build every prompt again, not only the missing and stale ones.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON (progress goes to stderr).")
def build(site, force, as_json):
    """Make SITE/prompts/<id>.ulaw for every prompt of the site.

    \b
    Each menu's greeting (its recording in `audio`, else its `prompt` text), every built-in
    phrase of [branch] language (cut where a name or number goes in) and the keys 0-9, star
    and hash. Text is spoken by espeak-ng (en: voice "en", zh: "cmn"); recordings (WAV, or
    MP3 if sox has libsox-fmt-mp3) are converted by sox. Every file is raw 8 kHz G.711 µ-law,
    band-limited to 300-3400 Hz, silence trimmed, peak-normalised to -3 dBFS.

    Only what is missing or stale is built (the text, voice or recording changed since; see
    SITE/prompts/manifest.json); files no prompt of the site uses any more are removed.
    `zongji check` reports what is missing or stale.
    """
    runtime, _ = load_site(site)
    root = site_folder(site)
    builder = promptfiles.Builder(root, runtime)
    items, todo, _ = builder.stale(force)
    count = [0]

    def progress(item):
        count[0] += 1
        how = "recording %s" % item.recording if item.recording else "text, voice %s" % item.voice
        click.echo("[%d/%d] %s (%s)" % (count[0], len(todo), item.file, how), err=as_json)

    try:
        done = builder.run(force, progress)
    except promptfiles.PromptError as e:
        raise ZongjiError(str(e)) from None
    except OSError as e:
        where = os.path.join(root, promptfiles.core.DIR)
        raise ZongjiError("can't write the prompts in %s: %s" % (where, e.strerror or e)) from None
    files = promptfiles.files_bytes(root)
    total = sum(n for _, n in files)
    manifest = os.path.join(root, promptfiles.MANIFEST)
    if as_json:
        out = {
            "site": site,
            "manifest": manifest,
            "built": done["built"],
            "kept": done["kept"],
            "removed": done["removed"],
            "failed": [{"id": pid, "message": msg} for pid, msg in done["failed"]],
            "files": len(files),
            "bytes": total,
            "seconds": round(total / float(promptfiles.RATE), 2),
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for name in done["removed"]:
            click.echo("removed %s: no prompt of the site uses it any more" % name)
        for pid, msg in done["failed"]:
            click.echo("zongji: %s: %s" % (pid, msg), err=True)
        click.echo(
            "%s built, %s unchanged, %s removed: %s, %s (%.1f s of audio); %s"
            % (
                plural(len(done["built"]), "prompt"),
                len(done["kept"]),
                len(done["removed"]),
                plural(len(files), "file"),
                _kb(total),
                total / float(promptfiles.RATE),
                manifest,
            )
        )
    if done["failed"]:
        raise ZongjiError("%s could not be built (see above)" % plural(len(done["failed"]), "prompt"))


def _kb(n):
    return "%d KB" % -(-n // 1024) if n else "0 KB"
