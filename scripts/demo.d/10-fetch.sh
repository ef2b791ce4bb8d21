# Stage 10 (demo): a loopback bucket of generated books, fetched with
# `fetch pg19 --base-url` exactly as the real bucket would be.
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
bucket="$PG19_WORK/bucket"
if [ ! -f "$bucket/metadata.csv" ]; then
  rm -rf "$bucket"
  "$PY" tests/fetch/make_fixture_bucket.py "$bucket" 40 4 6
fi
port_file=$(mktemp)
"$PY" tests/fetch/gcs_server.py "$bucket" --port 0 >"$port_file" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$port_file"' EXIT
for _ in $(seq 100); do grep -q PORT "$port_file" && break; sleep 0.1; done
port=$(awk '/PORT/ {print $2}' "$port_file")
bin/fetch pg19 --base-url "http://127.0.0.1:$port" --out "$PG19_WORK/pg19" --jobs 8
