#!/usr/bin/env bash
# A one-node Slurm cluster on this Debian machine, for CI and for trying the
# workflow's Slurm profile: installs slurm-wlm and munge, writes
# /etc/slurm/slurm.conf for this host from slurm.conf.in (one CPU partition),
# starts munged, slurmctld and slurmd, and waits until `sinfo` shows the node
# idle. Run as root; running it again restarts only what changed.
#
#   ci/slurm/up.sh            # then: sinfo, sbatch, snakemake --workflow-profile profiles/slurm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wait_s=${SLURM_UP_TIMEOUT:-90}
export DEBIAN_FRONTEND=noninteractive

fail() { echo "ci/slurm/up.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (installs packages and starts daemons)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -q || true
  apt-get install -y -q --no-install-recommends slurm-wlm munge || fail "apt-get could not install slurm-wlm and munge"
fi

# munge authenticates every Slurm message; Debian's package makes the key.
[ -s /etc/munge/munge.key ] || { mungekey --create && chown munge:munge /etc/munge/munge.key; }
if ! munge -n >/dev/null 2>&1; then
  service munge start >/dev/null || fail "munged did not start"
fi
munge -n | unmunge >/dev/null || fail "munge cannot encode and decode a credential"

host=$(hostname -s)
node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=... RealMemory=... as this machine has them
config=$(sed -e "s/@HOST@/$host/g" -e "s/@NODE@/$node/" "$here/slurm.conf.in")
changed=0
if [ "$(cat /etc/slurm/slurm.conf 2>/dev/null)" != "$config" ]; then
  mkdir -p /etc/slurm
  printf '%s\n' "$config" > /etc/slurm/slurm.conf
  changed=1
fi

for daemon in slurmctld slurmd; do
  if [ "$changed" = 1 ] || ! pgrep -x "$daemon" >/dev/null; then
    service "$daemon" stop >/dev/null 2>&1 || true
    service "$daemon" start >/dev/null || fail "$daemon did not start (see /var/log/slurm/$daemon.log)"
  fi
done

deadline=$((SECONDS + wait_s))
state=""
while [ "$SECONDS" -lt "$deadline" ]; do
  state=$(sinfo -h -N -n "$host" -o %t 2>/dev/null || true)
  case "$state" in
    idle|mix|alloc) sinfo; exit 0 ;;
    drain|drng|down) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
fail "node $host is not idle after ${wait_s} s (state: ${state:-no answer from slurmctld})"
