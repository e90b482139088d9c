#!/bin/bash
# capture-strongswan.sh [RUNDIR] -- capture real IKEv2 traffic between two
# strongSwan charons in UML and turn it into test data under
# tests/captures/strongswan-<version>/<ike proposal>/ (then check it).
#
#   RUNDIR        where the raw run goes (default: a new /tmp/capture-run.*)
#   CAPTURE_DEST  where the test data goes (default: tests/captures/strongswan-<upstream version>)
#   SUITES        "ike/esp ..." (default: the three suites of the scenario)
#   CAPTURE_LEVELS  charon filelog levels (default in the scenario)
set -euo pipefail
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=packages.sh
. "$LAB_DIR/packages.sh"

lab_ensure_packages tcpdump strongswan-charon strongswan-swanctl libstrongswan-standard-plugins python3
RUN=${1:-$(mktemp -d /tmp/capture-run.XXXXXX)}
version=$(dpkg-query -W -f='${Version}' strongswan-charon)
upstream=${version%%-*}
DEST=${CAPTURE_DEST:-$REPO/tests/captures/strongswan-$upstream}

t0=$(date +%s)
export SUITES=${SUITES:-} CAPTURE_LEVELS=${CAPTURE_LEVELS:-}
[ -n "$SUITES" ] || unset SUITES
[ -n "$CAPTURE_LEVELS" ] || unset CAPTURE_LEVELS
LAB_PASS_ENV="SUITES CAPTURE_LEVELS" UML_TIMEOUT=${UML_TIMEOUT:-400} \
    "$LAB_DIR/uml-run.sh" "$LAB_DIR/scenarios/capture-strongswan.sh" "$RUN"
t1=$(date +%s)
python3 "$LAB_DIR/captures.py" extract "$RUN" "$DEST" \
    --version "strongSwan $upstream (Debian $version)" --command "tests/lab/capture-strongswan.sh"
python3 "$LAB_DIR/captures.py" check "$DEST"
echo "capture-strongswan: UML run $((t1 - t0))s, total $(( $(date +%s) - t0 ))s; raw run in $RUN, data in $DEST" >&2
