"""`zongji bundle`: compile a site into the bundle the device loads."""

import json
import os

import click

from zongji_companion import flashbudget
from zongji_companion.cli import ZongjiError, load_site, main, plural, site_folder, write_whole
from zongji_companion.cli.check import DEFAULT_BOARD, site_fit


@main.command("bundle")
@click.argument("site", default=".", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the bundle here (default: SITE/site.zjb).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option(
    "--board",
    help="The board whose flash must hold the bundle and the prompt files (a boards/ name or a .json path; "
    "default %s)." % DEFAULT_BOARD,
)
def bundle_cmd(site, output, as_json, board):
    """Compile SITE into the compact bundle the device loads.

    The bundle is canonical JSON lines with a SHA-256 version over its content: the same site
    always gives the same bytes and the same version (its first 16 hex digits are printed,
    and host mode shows them in its banner). It holds the SIP secrets and the provider
    password: keep it out of git (`zongji init` writes a .gitignore for it). It is checked
    first and loaded back through the device's own loader before it is written, so a bundle
    that this command writes is one the device accepts.

    The bundle, the prompt files (SITE/prompts, `zongji prompts build`) and the state the
    device keeps must fit on the board's flash filesystem; when they don't, nothing is
    written and the sizes are listed.
    """
    runtime, data = load_site(site)
    fit = site_fit(site_folder(site), len(data), board)
    if fit is not None and fit["over"]:
        raise ZongjiError(flashbudget.over_message(fit) + "; nothing written")
    if output is None:
        output = os.path.join(site if os.path.isdir(site) else os.path.dirname(site) or ".", "site.zjb")
    write_whole(output, data)
    info = {
        "file": output,
        "bytes": len(data),
        "version": runtime.version,
        "extensions": len(runtime.directory),
        "site": runtime.branch.get("name"),
        "flash": fit,
    }
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        click.echo(
            "wrote %s: %d bytes, %s, version %s"
            % (output, len(data), plural(info["extensions"], "extension"), runtime.version[:16])
        )
        if fit is not None:
            click.echo(flashbudget.describe(fit))
