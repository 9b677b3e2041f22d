#!/usr/bin/env bash
# Stops the mlflow server that ci/tracking/up.sh started with this state
# folder; with --drop also drops its PostgreSQL database and role (every run
# in them is lost; the artifact folder is left for you to remove).
#
#   ci/tracking/down.sh [--state /var/lib/fas-mlflow] [--drop]
set -euo pipefail
state=/var/lib/fas-mlflow drop=0
while [ $# -gt 0 ]; do
  case "$1" in
    --state) state=$2; shift 2 ;;
    --drop) drop=1; shift ;;
    *) echo "ci/tracking/down.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ -s "$state/server.pid" ]; then
  pid=$(cat "$state/server.pid")
  # the server was started with setsid: its workers are in its process group
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$state/server.pid"
fi
if [ "$drop" = 1 ] && [ -s "$state/database" ]; then
  database=$(cat "$state/database")
  runuser -u postgres -- dropdb --if-exists "$database"
  runuser -u postgres -- psql -q -c "DROP ROLE IF EXISTS $database"
  sed -i "/:$database:$database:/d" "$state/pgpass"
  rm -f "$state/database"
fi
