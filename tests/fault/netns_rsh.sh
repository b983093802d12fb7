#!/usr/bin/env bash
# netns_rsh.sh: the rsh agent of the two-host fault test (multihost_netns.sh). Open MPI
# calls it as `netns_rsh.sh [ssh options] HOST COMMAND...` to start its daemon on HOST;
# HOST is one of the test's own addresses, mapped to its network namespace by the file
# $KD_NETNS_MAP ("ADDRESS NAMESPACE" lines). Nothing else is ever addressed.
set -euo pipefail
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done # ssh options (none expected)
host=$1
shift
ns=$(awk -v h="$host" '$1 == h {print $2}' "${KD_NETNS_MAP:?}")
[ -n "$ns" ] || { echo "netns_rsh: $host is not one of this test's hosts" >&2; exit 1; }
exec ip netns exec "$ns" /bin/sh -c "$*"
