#!/usr/bin/env bash
# flash.sh: turn a board into the branch's switchboard, for installers without Python set up.
#
#   ./flash.sh --board esp32-wrover --firmware ESP32_GENERIC-SPIRAM-v1.29.0.bin --site shanghai
#   ./flash.sh --help           every option (they are `zongji flash`'s)
#
# The first run makes a Python environment in .venv beside this file and installs zongji into
# it (a minute, from PyPI); later runs reuse it, and install again only when pyproject.toml
# changed. Then it runs `zongji flash` with the same arguments and exits with its code: 0 the
# board answers, 1 a step failed (the message says what to do), 2 a wrong option.
#
#   PYTHON=python3.12 ./flash.sh ...   the Python to make the environment with (3.11 or newer)
#   ZONGJI_VENV=DIR ./flash.sh ...     make or reuse the environment in DIR instead
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${ZONGJI_VENV:-$here/.venv}
python=${PYTHON:-python3}
die() {
    echo "flash.sh: $*" >&2
    exit 1
}

command -v "$python" >/dev/null 2>&1 ||
    die "no $python here: install Python 3.11 or newer (Debian/Ubuntu: sudo apt install python3 python3-venv; macOS and Windows: python.org), or name one with PYTHON=..."
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$("$python" -V 2>&1) is too old: zongji needs Python 3.11 or newer (name another with PYTHON=...)"

# Installed already when the stamp holds pyproject.toml's digest (flash.sh's own, or the
# developers' from .ci/venv.sh, which installs the same package and its test tools too).
want=$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)
have() { [ -x "$venv/bin/zongji" ] && grep -qx "$want" "$venv/.zongji-installed" "$venv/.zongji-flash" 2>/dev/null; }
if ! have; then
    if [ ! -x "$venv/bin/python" ]; then
        echo "flash.sh: making a Python environment in $venv" >&2
        "$python" -m venv "$venv" ||
            die "$python could not make $venv (Debian/Ubuntu: sudo apt install python3-venv, then run this again)"
    fi
    echo "flash.sh: installing zongji and esptool into $venv (once, a minute)" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here" ||
        die "pip could not install zongji (its message is above): check the internet connection (a proxy: HTTPS_PROXY=...), then run this again"
    echo "$want" >"$venv/.zongji-flash"
fi
exec "$venv/bin/zongji" flash "$@"
