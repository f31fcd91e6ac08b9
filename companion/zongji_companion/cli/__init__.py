"""The `zongji` command line: the group `main`, what several commands share, one module per command.

Errors the user can act on are `ZongjiError` (shown as `zongji: message`, exit 1); click's
usage errors exit 2; anything unexpected becomes `zongji: internal error: ...` with exit 3
(set ZONGJI_DEBUG=1 to see the traceback instead).
"""

import io
import os
import sys

import click

from zongji_companion import sitefiles

STATE_DIR = ".zongji-state"


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


EXIT_PIPE_CLOSED = 141  # what a shell reports for a program ended by SIGPIPE (128 + 13)


def _stdout_closed():
    """The reader of our stdout went away (`zongji cdr | head -1`): let what is still buffered
    go nowhere, so neither we nor Python's exit flush print a BrokenPipeError."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (tests): nothing will flush to the closed pipe


def _flush_stdout():
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed()
        raise SystemExit(EXIT_PIPE_CLOSED) from None


class _Group(click.Group):
    """Turns an unexpected exception into one line and exit code 3: the last resort. A closed
    stdout ends any command quietly, with exit code 141 as a shell's SIGPIPE would."""

    def main(self, *args, **kwargs):
        try:
            rv = super().main(*args, **kwargs)
        except SystemExit:
            _flush_stdout()  # --help, --version and every command end here: a closed pipe shows now
            raise
        _flush_stdout()
        return rv

    def invoke(self, ctx):
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()
        except BrokenPipeError:
            _stdout_closed()
            raise click.exceptions.Exit(EXIT_PIPE_CLOSED) from None
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
      zongji provider shanghai   (another terminal) a test SIP provider, to try outside calls
      zongji cdr shanghai        the calls `run` recorded
      zongji bundle shanghai     compile the folder into the bundle the device loads
      zongji device run shanghai the device firmware itself, on this computer (no board needed)
      zongji sync shanghai --device URL    put the site on a device, live (diff, then ask)
      zongji status --device URL           what a device runs, its phones, trunk and calls

    Run `zongji COMMAND --help` for the details of a command.
    """


# ---------------------------------------------------------------- shared helpers


def write_whole(path, data):
    """Write a file whole (a temp file beside it, then a rename: an interrupted write leaves the
    old file or none, never half a file), its folder made if missing; ZongjiError if it can't."""
    tmp = path + ".tmp"
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise ZongjiError("can't write %s: %s" % (path, e.strerror or e)) from None


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def load_site(path):
    """check_site + the device's own bundle loader: what simulate runs is what the device runs.

    Returns (runtime Site, bundle bytes). Raises ZongjiError listing the errors, if any."""
    from zongji.site import bundle as site_bundle

    loaded, problems = sitefiles.check_site(path)
    errors = [p for p in loaded.report(problems) if p["level"] == "error"]
    if errors:
        lines = ["%s:%d: error: %s" % (p["file"], p["line"], p["message"]) for p in errors[:20]]
        more = "\n... and %d more" % (len(errors) - 20) if len(errors) > 20 else ""
        raise ZongjiError(
            "the site has %s; fix them first (zongji check %s):\n%s%s"
            % (plural(len(errors), "error"), path, "\n".join(lines), more)
        )
    data = site_bundle.encode(loaded.site, loaded.extensions)
    try:
        return site_bundle.load(data), data
    except site_bundle.BundleError as e:  # the core disagreeing with itself is a bug, say so
        raise ZongjiError("the compiled bundle does not load: %s" % e) from None


def site_folder(site):
    return site if os.path.isdir(site) or not site.endswith(".toml") else os.path.dirname(site) or "."


def state_for(site, state):
    """The state folder: --state, else SITE/.zongji-state, else ./.zongji-state (no SITE)."""
    if state:
        return state
    return os.path.join(site_folder(site), STATE_DIR) if site else STATE_DIR


# ---------------------------------------------------------------- the commands, in --help order

from zongji_companion.cli import check, init, simulate, run, cdr, bundle, provider, device  # noqa: E402, F401, I001
from zongji_companion.cli import dtmf  # noqa: E402, F401
from zongji_companion.cli import prompts  # noqa: E402, F401
from zongji_companion.cli import sync  # noqa: E402, F401
from zongji_companion.cli import pull  # noqa: E402, F401
from zongji_companion.cli import image, boards  # noqa: E402, F401
from zongji_companion.cli import flash  # noqa: E402, F401
