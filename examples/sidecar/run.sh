#!/bin/sh
# The sidecar pattern on one host: start the writer, wait for its ready line, run the app,
# stop the writer (SIGTERM: drain, write, fsync), verify the file.
# sh examples/sidecar/run.sh [logDir] [records]
# LOGFUNNEL: the command, default ./node_modules/.bin/logfunnel (the bin itself, not npx: npm
# does not pass SIGTERM on to the command it runs).
set -eu
dir=${1:-./logs}
records=${2:-10000}
logfunnel=${LOGFUNNEL:-./node_modules/.bin/logfunnel}
mkdir -p "$dir"
endpoint="ipc://$(cd "$dir" && pwd)/writer.sock"
$logfunnel writer --file "$dir/app.log" --endpoint "$endpoint" --pid-file "$dir/writer.pid" > "$dir/writer.out" 2> "$dir/writer.err" &
writer=$!
trap 'kill -TERM $writer 2>/dev/null || true' EXIT
until grep -q '"event":"ready"' "$dir/writer.out" 2>/dev/null; do
  kill -0 $writer 2>/dev/null || { echo 'writer exited before it was ready:' >&2; cat "$dir/writer.err" >&2; exit 1; }
  sleep 0.1
done
LOGFUNNEL_ENDPOINT="$endpoint" node "$(dirname "$0")/app.js" "$records"
kill -TERM "$(cat "$dir/writer.pid")"
wait $writer
trap - EXIT
$logfunnel verify "$dir/app.log" --expect "$records"
