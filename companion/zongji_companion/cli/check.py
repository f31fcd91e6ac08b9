"""`zongji check`: every problem of a site folder as file:line, exit 1 on errors."""

import json

import click

from zongji_companion import sitefiles
from zongji_companion.cli import ZongjiError, main, plural

DEFAULT_BOARD = "esp32-wrover"  # the suggested board, as `zongji device run` takes by default


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
@click.option(
    "--board",
    help="Check that the bundle and the prompt files fit on this board's flash (a boards/ name or a .json "
    "path; default %s)." % DEFAULT_BOARD,
)
@click.pass_context
def check(ctx, site, as_json, board):
    """Check a site folder (default: the current one) and list every problem.

    SITE is a folder holding site.toml and its staff CSV, or the .toml file itself. Each
    problem is printed as `file:line: error|warning: message`. Exit code 0 when there are
    no errors (warnings allowed), 1 when there are.

    Prompt files (`zongji prompts build`) that are missing or stale are warnings: the device
    still routes every call and plays silence, or the old audio, for them. A site whose
    bundle and prompts do not fit on the board's flash is an error.
    """
    loaded, problems = sitefiles.check_site(site)
    fit = None
    if loaded.site and not any(p[0] == "error" for p in problems):
        from zongji.site import bundle as site_bundle

        fit = site_fit(loaded.root, len(site_bundle.encode(loaded.site, loaded.extensions)), board)
        problems = problems + _prompt_problems(loaded, site, fit)
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
        if fit is not None:
            out["flash"] = fit
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


def site_fit(root, bundle_bytes, board):
    """The flash estimate (flashbudget.estimate) of a site folder's bundle and prompts on `board`
    (None: the default board, and no estimate when its file is not installed)."""
    from zongji_companion import boards, flashbudget, promptfiles

    try:
        spec = boards.load(board or DEFAULT_BOARD)
    except boards.BoardError as e:
        if board is None:
            return None  # an install without boards/: check what can be checked
        raise ZongjiError(str(e)) from None
    return flashbudget.estimate(spec, bundle_bytes, promptfiles.files_bytes(root))


def _prompt_problems(loaded, site_arg, fit):
    """The prompt files' warnings and, when the site does not fit on the board, an error."""
    from zongji.site.model import Site

    from zongji_companion import flashbudget, promptfiles

    numbers = set(str(e.get("number")) for e in loaded.extensions)
    out = promptfiles.check_problems(
        loaded.root, Site(loaded.site), site_arg, lambda name, line: (sitefiles.FILE, name, line), numbers
    )
    if fit is not None and fit["over"]:
        where = promptfiles.MANIFEST if fit["prompt_files"] else loaded.toml_name
        out.append(
            (
                "error",
                (sitefiles.FILE, where, 1),
                flashbudget.over_message(fit),
            )
        )
    return out
