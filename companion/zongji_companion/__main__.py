"""`python -m zongji_companion` runs the `zongji` command line."""

from zongji_companion.cli import main

main(prog_name="zongji")
