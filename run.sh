#!/usr/bin/env bash
# Run the appliance on the example branch: ./run.sh [zongji args...]
#
# Sets up .venv on first use (see .ci/venv.sh). With no arguments it writes the embedded
# example branch to ./example (once), checks it and runs its switchboard on this computer
# (`zongji run`: softphones register to 127.0.0.1:5060) until Ctrl-C; with arguments it is the
# zongji CLI itself, e.g. ./run.sh check example, ./run.sh simulate example --from 201 --dial 600
set -euo pipefail
cd "$(dirname "$0")"
. .ci/venv.sh
if [ $# -gt 0 ]; then
    exec zongji "$@"
fi
[ -f example/site.toml ] || zongji init example
zongji check example
exec zongji run example --sip 127.0.0.1:5060
