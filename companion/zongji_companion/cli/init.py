"""`zongji init`: write the example branch, with fresh secrets, into a folder."""

import csv
import io
import os
import secrets
import string

import click

from zongji_companion.cli import ZongjiError, main

TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "template")
TEMPLATE_FILES = ("site.toml", "staff.csv")
SECRET_LENGTH = 16
PIN_LENGTH = 6
# letters and digits only: a cell starting with - + = @ is a formula to Excel
_SECRET_ALPHABET = string.ascii_letters + string.digits
# A folder holding only these is still "empty": a fresh `git init`, a clone of an empty repository.
_HOUSEKEEPING = (".git", ".gitignore", ".gitattributes", ".DS_Store")
_HOUSEKEEPING_PREFIXES = ("readme", "license")
GITIGNORE = "# zongji: bundles hold SIP secrets; host mode keeps registrations and call records here\n"
IGNORED = ("*.zjb", ".zongji-state/")


def _random_secret():
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def _random_pin():
    from zongji.site.staffchecks import trivial_pin

    while True:  # no leading zero: a spreadsheet would drop it; nothing `check` calls trivial
        pin = secrets.choice("123456789") + "".join(secrets.choice(string.digits) for _ in range(PIN_LENGTH - 1))
        if not trivial_pin(pin, ""):
            return pin


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


def write_example(directory):
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


def _site_entries(directory):
    """What in `directory` init would not simply sit beside: everything but git's and a README."""
    if not os.path.isdir(directory):
        return []
    return [
        name
        for name in sorted(os.listdir(directory))
        if name not in _HOUSEKEEPING and not name.lower().startswith(_HOUSEKEEPING_PREFIXES)
    ]


def write_gitignore(directory):
    """Add the bundle and state patterns to DIRECTORY/.gitignore; returns what it did, or None."""
    path = os.path.join(directory, ".gitignore")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeError) as e:
        raise ZongjiError("can't read %s: %s" % (path, getattr(e, "strerror", None) or e)) from None
    have = set(line.strip() for line in (text or "").splitlines())
    missing = [p for p in IGNORED if p not in have]
    if not missing:
        return None
    add = ("" if not text or text.endswith("\n") else "\n") + GITIGNORE + "".join(p + "\n" for p in missing)
    try:
        with open(path, "a", encoding="utf-8", newline="\n") as f:
            f.write(add)
    except OSError as e:
        raise ZongjiError("can't write %s: %s" % (path, e.strerror)) from None
    return "wrote" if text is None else "added %s to" % ", ".join(missing)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--force", is_flag=True, help="Write into DIRECTORY even if it is not empty.")
def init(directory, force):
    """Write a complete, working example branch into DIRECTORY.

    A Shanghai office: twelve staff, a main menu with a support submenu, sales and support
    ring groups, opening hours with the 2026 National Day holiday, dial-out classes and a
    trunk to a test provider on this computer. Every SIP secret and PIN is freshly random.
    DIRECTORY may be new, empty, or hold only a git repository (.git, .gitignore, a README);
    any other existing content is refused unless --force (which overwrites site.toml and the
    staff CSV and leaves other files alone). A .gitignore keeps compiled bundles (*.zjb, they
    hold the SIP secrets) and host mode's .zongji-state/ out of git.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ZongjiError("%s is a file, not a folder: pick a folder name" % directory)
    taken = _site_entries(directory)
    if taken and not force:
        raise ZongjiError(
            "%s is not empty (it holds %s): pick a new folder, or add --force to overwrite its site.toml "
            "and staff.csv" % (directory, ", ".join(taken[:3]) + (" ..." if len(taken) > 3 else ""))
        )
    staff = write_example(directory)
    ignored = write_gitignore(directory)
    click.echo(
        "wrote %s  (the branch: menus, ring groups, hours, dial-out, trunk)" % os.path.join(directory, "site.toml")
    )
    click.echo(
        "wrote %s  (%d staff, each with a fresh random SIP secret)" % (os.path.join(directory, "staff.csv"), staff)
    )
    if ignored:
        click.echo(
            "%s %s  (bundles and host-mode state stay out of git)" % (ignored, os.path.join(directory, ".gitignore"))
        )
    click.echo("next: zongji check %s" % directory)
