#!/usr/bin/env bash
# MLflow as a team server: PostgreSQL (Debian's postgresql) as the backend
# store and an artifact store the server proxies (--artifacts-destination),
# so clients need only the server's URL. Run as root: installs and starts
# PostgreSQL, creates a database and a role of the same name (its password in
# STATE/pgpass), starts `mlflow server` in the background (pid and log in
# STATE) and waits until it answers. Prints the tracking URI.
#
#   ci/tracking/up.sh [--port 5000] [--host 127.0.0.1] [--database fas_mlflow]
#                     [--state /var/lib/fas-mlflow] [--artifacts DIR|s3://...] [--workers 2]
#                     [-- more `mlflow server` options, e.g. --allowed-hosts, --app-name basic-auth]
#   ci/tracking/up.sh --postgres-only     # PostgreSQL alone (what .ci/run does)
#   ci/tracking/down.sh --state DIR [--drop]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
port=5000 host=127.0.0.1 database=fas_mlflow state=/var/lib/fas-mlflow artifacts="" workers=2
postgres_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --host) host=$2; shift 2 ;;
    --database) database=$2; shift 2 ;;
    --state) state=$2; shift 2 ;;
    --artifacts) artifacts=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --postgres-only) postgres_only=1; shift ;;
    --) shift; break ;;
    *) echo "ci/tracking/up.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mlflow=${MLFLOW:-$repo/.venv/bin/mlflow}
export DEBIAN_FRONTEND=noninteractive

fail() { echo "ci/tracking/up.sh: $*" >&2; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }

[ "$(id -u)" = 0 ] || fail "run as root (installs and starts PostgreSQL)"
if ! command -v pg_lsclusters >/dev/null || ! command -v curl >/dev/null; then
  apt-get update -q || true
  apt-get install -y -q --no-install-recommends postgresql curl || fail "apt-get could not install postgresql"
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null
pg_lsclusters -h | grep -q "^$version main .* online" || pg_ctlcluster "$version" main start \
  || fail "PostgreSQL $version did not start (see /var/log/postgresql/)"
pg_port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
as_postgres pg_isready -q -p "$pg_port" || fail "PostgreSQL does not accept connections on port $pg_port"
[ "$postgres_only" = 1 ] && { echo "PostgreSQL $version on port $pg_port"; exit 0; }

[[ "$database" =~ ^[a-z_][a-z0-9_]*$ ]] || fail "--database must be a lower-case SQL name: $database"
[ -x "$mlflow" ] || fail "no mlflow at $mlflow (make setup, or set MLFLOW=/path/to/mlflow)"
mkdir -p "$state" && chmod 700 "$state"
pgpass=$state/pgpass
if ! grep -q ":$database:$database:" "$pgpass" 2>/dev/null; then
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  (umask 077 && echo "127.0.0.1:$pg_port:$database:$database:$password" >> "$pgpass")
  if as_postgres psql -p "$pg_port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$database'" | grep -q 1; then
    as_postgres psql -p "$pg_port" -q -c "ALTER ROLE $database LOGIN PASSWORD '$password'"
  else
    as_postgres psql -p "$pg_port" -q -c "CREATE ROLE $database LOGIN PASSWORD '$password'"
  fi
fi
as_postgres psql -p "$pg_port" -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
  || as_postgres createdb -p "$pg_port" -O "$database" "$database"

pidfile=$state/server.pid
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  fail "a server from $state is already running (pid $(cat "$pidfile")): ci/tracking/down.sh --state $state"
fi
artifacts=${artifacts:-$state/artifacts}
case "$artifacts" in *://*) ;; *) mkdir -p "$artifacts" ;; esac
# The password stays in the pgpass file (libpq reads PGPASSFILE), out of the command line.
PGPASSFILE=$pgpass MLFLOW_DISABLE_TELEMETRY=true setsid "$mlflow" server \
  --backend-store-uri "postgresql://$database@127.0.0.1:$pg_port/$database" \
  --artifacts-destination "$artifacts" --serve-artifacts \
  --host "$host" --port "$port" --workers "$workers" "$@" > "$state/server.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
echo "$database" > "$state/database"

uri="http://$host:$port"
[ "$host" = 0.0.0.0 ] && uri="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  if [ "$(curl -fsS "$uri/health" 2>/dev/null)" = OK ]; then
    echo "MLFLOW_TRACKING_URI=$uri"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 30 "$state/server.log" >&2; fail "mlflow server exited"; }
  sleep 1
done
tail -n 30 "$state/server.log" >&2
fail "mlflow server did not answer on $uri/health within 300 s"
