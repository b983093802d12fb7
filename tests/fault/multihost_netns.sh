#!/usr/bin/env bash
# Promise: the same recovery holds across hosts. Two "hosts" are two network namespaces on
# a bridge (this test's own namespaces, bridge and 10.x subnet; removed in a trap), with
# one rank each talking TCP; mpirun reaches the second host through an rsh agent that runs
# `ip netns exec` (netns_rsh.sh). The second host's rank is killed mid-run, the job is
# restarted with the same command and must end with the digest of an uninterrupted 2-rank
# run on one host. Skips (exit 77) when namespaces cannot be created (no root/CAP_NET_ADMIN).
source "$(dirname "$0")/lib.sh"

id=$(( $$ % 10000 ))
NS0=kdf${id}h0 NS1=kdf${id}h1 BR=kdf${id}br
NET=10.213.$(( $$ % 250 ))
fault_extra_cleanup() {
    ip netns del "$NS0" 2>/dev/null || true
    ip netns del "$NS1" 2>/dev/null || true
    ip link del "$BR" 2>/dev/null || true
}
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! ip netns add "$NS0" 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here (needs root and CAP_NET_ADMIN)"
    exit 77
fi
ip netns add "$NS1"
ip link add "$BR" type bridge
ip link set "$BR" up
i=0
for ns in "$NS0" "$NS1"; do
    ip link add "kdf${id}v$i" type veth peer name "kdf${id}p$i"
    ip link set "kdf${id}v$i" master "$BR" up
    ip link set "kdf${id}p$i" netns "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "kdf${id}p$i" name eth0
    ip -n "$ns" addr add "$NET.$((i + 2))/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$NET.$((i + 2)) $ns" >>"$W/netns.map"
    i=$((i + 1))
done
export KD_NETNS_MAP=$W/netns.map
echo "hosts: $NET.2 ($NS0), $NET.3 ($NS1) on bridge $BR"

A=$W/a B=$W/b
kd_run 2 "$A" --quiet
expect_rc 0 "run A (uninterrupted, one host)"

# mpirun runs inside the first host; the second host's daemon is started by the rsh agent
MH_FLAGS="--host $NET.2:1,$NET.3:1 --mca plm_rsh_agent $KD_SOURCE_DIR/tests/fault/netns_rsh.sh
  --mca btl self,vader,tcp --mca btl_tcp_if_include $NET.0/24 --mca oob_tcp_if_include $NET.0/24"
mh_start() {
    recipe_args "$B"
    STALE_INODE=$(stat -c %i "$B/stages/00-pretrain/metrics.jsonl" 2>/dev/null || true)
    # shellcheck disable=SC2086
    ip netns exec "$NS0" timeout -k 10 "$RUN_TIMEOUT" $KD_MPIRUN $KD_MPIRUN_FLAGS $MH_FLAGS -np 2 \
        "$KD_BIN" run "${RARGS[@]}" --quiet >>"$B.log" 2>&1 &
    BG=$!
    BG_PIDS+=("$BG")
}
mh_start
wait_step "$B" "$(rand 12 30)" || { bg_wait; echo "FAIL: two-host run ended early with $RC"; cat "$B.log"; exit 1; }
pid=$(rank_pid 1)
[ -n "$pid" ] && [ "$(readlink /proc/$pid/ns/net)" = "$(readlink /proc/$(ip netns pids "$NS1" | head -1)/ns/net)" ] ||
    { echo "FAIL: rank 1 ($pid) is not in $NS1"; exit 1; }
kill -9 "$pid"
bg_wait
echo "killed rank 1 (pid $pid, host $NS1) at step $(last_step "$B"): mpirun exit status $RC"
[ "$RC" != 0 ] || { echo "FAIL: the killed job reported success"; exit 1; }
all_valid "$B"
mh_start
bg_wait
expect_rc 0 "two-host run restarted"
{ grep -m1 -o "resuming from .*" "$B.log" || true; } | sed 's/^/  /'
same_digest "$A" "$B"
same_metrics "$A" "$B" 0
echo "multihost_netns: OK"
