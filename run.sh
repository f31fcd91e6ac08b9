#!/usr/bin/env bash
# Run the appliance on the example branch: ./run.sh [zongji args...]
#
# Sets up .venv on first use (see .ci/venv.sh). With no arguments it writes the embedded
# example branch to ./example (once) and runs it; with arguments it is the zongji CLI itself,
# e.g. ./run.sh check example
set -euo pipefail
cd "$(dirname "$0")"
. .ci/venv.sh
if [ $# -gt 0 ]; then
    exec zongji "$@"
fi
[ -f example/site.toml ] || zongji init example
zongji check example
exec zongji simulate example --call 02155550100 --keys 1 --at "2026-11-25 10:30"
