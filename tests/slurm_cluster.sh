#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests/slurm_test.ts:
#
#   tests/slurm_cluster.sh start DIR   # munged, slurmctld, slurmd; state in DIR
#   tests/slurm_cluster.sh stop DIR    # cancels its jobs, stops those daemons
#
# `start` writes DIR/slurm.conf (one node with this machine's CPUs, ports that
# are free) and DIR/env (`SLURM_CONF=...`, for sbatch, squeue and scancel),
# and exits 0 once the node takes jobs. It exits 3 with a line saying why
# when this machine cannot run one (not root, Debian's slurm-wlm or munge not
# installed), and 1 when a daemon does not come up (the logs are in DIR/log).
# `stop` ends only the daemons whose pid files are in DIR.
set -uo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$(realpath -m "$2")

# Waits up to $2 tenths of a second for the command $1 to succeed.
wait_for() {
  local i
  for ((i = 0; i < $2; i++)); do
    eval "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# Ends the process in pid file $1: TERM, then KILL after 5 s.
stop_pid() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  wait_for "! kill -0 $pid" 50 || kill -KILL "$pid" 2>/dev/null
  rm -f "$1"
}

# A TCP port nobody listens on.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

case $action in
start)
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root: slurmd must run as root" >&2
    exit 3
  fi
  for tool in munged slurmctld slurmd sbatch squeue scancel sinfo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$tool not installed (apt-get install -y slurm-wlm munge)" >&2
      exit 3
    fi
  done
  mkdir -p "$dir"/{state,spool,log,munge}
  chmod 755 "$dir/munge"
  # munged's key: 1 KiB of random bytes, readable by root only.
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  if ! munged --force --socket="$dir/munge/munge.socket" \
    --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"; then
    echo "munged did not start (see $dir/log/munged.log)" >&2
    exit 1
  fi
  host=$(hostname -s)
  cpus=$(nproc)
  memory=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
  ctld_port=$(free_port) && slurmd_port=$(free_port) || {
    echo "no free port found" >&2
    exit 1
  }
  cat >"$dir/slurm.conf" <<EOF
# A one-node cluster for irmae's tests (tests/slurm_cluster.sh).
ClusterName=irmae
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
KillWait=2
MinJobAge=600
NodeName=irmae-node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=irmae Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  echo "SLURM_CONF=$dir/slurm.conf" >"$dir/env"
  export SLURM_CONF="$dir/slurm.conf"
  if ! slurmctld -f "$SLURM_CONF" -c ||
    ! wait_for "[ -s '$dir/slurmctld.pid' ] && scontrol ping | grep -q UP" 100; then
    echo "slurmctld did not start (see $dir/log/slurmctld.log)" >&2
    exit 1
  fi
  if ! slurmd -f "$SLURM_CONF" -N irmae-node ||
    ! wait_for "sinfo -h -o %t | grep -qx idle" 200; then
    echo "slurmd did not start or the node is not idle (see $dir/log/slurmd.log)" >&2
    exit 1
  fi
  echo "Slurm up: node irmae-node with $cpus CPUs, controller port $ctld_port, config $SLURM_CONF"
  ;;
stop)
  if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then
    export SLURM_CONF="$dir/slurm.conf"
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      scancel --full $jobs 2>/dev/null
      wait_for "[ -z \"\$(squeue -h -o %A)\" ]" 100
    fi
  fi
  # slurmd first (it ends its job steps), then the controller, then munged.
  stop_pid "$dir/slurmd.pid"
  stop_pid "$dir/slurmctld.pid" &
  stop_pid "$dir/munge/munged.pid" &
  wait
  ;;
*)
  usage
  ;;
esac
