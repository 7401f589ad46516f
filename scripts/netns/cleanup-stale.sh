#!/usr/bin/env bash
# Tear down topologies whose owner process (VIPMUX_NS_OWNER_PID at `up`) no longer exists, e.g. after a
# test binary was killed before its guard could run `down`. Topologies without an owner are left alone.
# Usage: cleanup-stale.sh        (state directories under ${VIPMUX_NS_STATE_ROOT:-${TMPDIR:-/tmp}/vipmux-netns})
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ -d "$NSL_STATE_ROOT" ] || exit 0
for dir in "$NSL_STATE_ROOT"/*/; do
  dir=${dir%/}
  [ -f "$dir/owner" ] || continue
  owner=$(cat "$dir/owner")
  case $owner in '' | *[!0-9]*) continue ;; esac
  if kill -0 "$owner" 2>/dev/null; then continue; fi
  prefix=$(basename "$dir")
  nsl_log "owner $owner of topology $prefix is gone; tearing it down"
  (
    export VIPMUX_NS_PREFIX=$prefix VIPMUX_NS_STATE=$dir
    nsl_init down
    nsl_teardown
  ) || nsl_log "could not tear down $prefix"
done
