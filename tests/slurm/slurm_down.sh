#!/usr/bin/env bash
# slurm_down.sh STATE_DIR: stop the private SLURM that slurm_up.sh started in STATE_DIR:
# cancel its jobs, then end slurmd, slurmctld and munged by the pids in their pid files
# (never by name). Safe to call twice or on a half-started cluster.
set -uo pipefail
state=${1:?usage: slurm_down.sh STATE_DIR}
[ -d "$state" ] || exit 0
if [ -f "$state/slurm.conf" ]; then
  export SLURM_CONF=$state/slurm.conf
  ids=$(squeue -h -o %i 2>/dev/null)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && scancel $ids 2>/dev/null && sleep 1
fi
stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
}
stop_pidfile "$state/slurmd.pid"
stop_pidfile "$state/slurmctld.pid"
stop_pidfile "$state/munge/munged.pid"
exit 0
