"""Helpers for companion tests: a fresh example site per test, and edits with line numbers."""

from click.testing import CliRunner
from zongji_companion.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def new_site(tmp_path, name="site"):
    """`zongji init` into tmp_path/name; returns the folder."""
    folder = tmp_path / name
    result = run("init", folder)
    assert result.exit_code == 0, result.output
    return folder


def edit(path, old, new, count=1):
    text = path.read_text(encoding="utf-8-sig")
    assert old in text, "%r not in %s" % (old, path)
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def line_of(path, needle):
    """1-based number of the first line of a file containing `needle`."""
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in %s" % (needle, path))
