#!/usr/bin/env bash
# Run every test, setting up what they need first: ./tests/run.sh [pytest args...]
#
# Idempotent, so the README's one "run the tests" line also works on a fresh machine:
#   1. a venv in the checkout (.venv) with `pip install -e '.[test]'`, redone only when
#      pyproject.toml changes;
#   2. the MicroPython WebAssembly runner via `npm ci` in tests/mpy, redone only when its
#      package files change;
#   3. MicroPython's ESP32 stubs in .stubs/esp32 (the shell's type check);
#   4. pytest, which runs tests/core under CPython and, through tests/test_micropython.py,
#      under MicroPython too.
# System packages (SIPp, baresip, ...) are .ci/run's job: it needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "tests/run.sh: $*" >&2; }

# 1. Python
. .ci/venv.sh

# 2. Node + MicroPython wasm (without node, test_micropython skips, or fails under CI=true)
if command -v npm >/dev/null 2>&1; then
    stamp=tests/mpy/node_modules/.zongji-installed
    want=$(digest tests/mpy/package.json tests/mpy/package-lock.json)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "npm ci (tests/mpy)"
        (cd tests/mpy && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$stamp"
    fi
else
    say "warning: npm not found, the MicroPython run will be skipped"
fi

# 3. MicroPython's ESP32 stubs, in a folder of their own (not the venv), for the shell's type
#    check (tests/test_typecheck.py); redone only when the pinned version changes
stubs_want=micropython-esp32-stubs==1.29.0.post1
if [ "$(cat .stubs/esp32/.zongji-installed 2>/dev/null)" != "$stubs_want" ]; then
    say "pip install --target .stubs/esp32 $stubs_want"
    rm -rf .stubs/esp32
    python -m pip install --quiet --disable-pip-version-check --target .stubs/esp32 "$stubs_want"
    echo "$stubs_want" >.stubs/esp32/.zongji-installed
fi

# 4. Tests. pytest exits 5 when it collected nothing: that is a failure too.
rc=0
python -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    say "pytest collected no tests"
    rc=1
fi
exit "$rc"
