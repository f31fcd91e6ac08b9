"""`zongji check`: every problem of a site folder as file:line, exit 1 on errors."""

import json

import click

from zongji_companion import sitefiles
from zongji_companion.cli import main, plural


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
            plural(counts["extensions"], "extension"),
            plural(counts["groups"], "group"),
            plural(counts["menus"], "menu"),
        )
        if errors:
            click.echo("%s, %s" % (plural(errors, "error"), plural(warnings, "warning")))
        elif warnings:
            click.echo("site OK with %s: %s" % (plural(warnings, "warning"), what))
        else:
            click.echo("site OK: %s" % what)
    if errors:
        ctx.exit(1)
