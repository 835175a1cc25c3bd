#!/usr/bin/env bash
# Runs clients.test.mjs (official openai and @anthropic-ai/sdk packages)
# against `mlx-moe serve` with the scripted test backend, once per tool-call
# format. The serve command is the cmd/mlx-moe test binary, which stands in
# the scripted backend for the engine when MLXMOE_FAKE_SERVE names a format.
#
#   scripts/server-clients/run.sh            # all formats, then the real engine
#   scripts/server-clients/run.sh qwen3      # one format
#   scripts/server-clients/run.sh real       # only the real engine (embedded model)
#
# Against a real server instead: BASE_URL=http://127.0.0.1:8080 node --test clients.test.mjs
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(qwen3 qwen3-coder glm deepseek-v3 real)

(cd "$here" && { [ -d node_modules ] || npm ci --no-audit --no-fund; })
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && go test -c -o "$work/mlx-moe.test" ./cmd/mlx-moe && go build -o "$work/mlx-moe" ./cmd/mlx-moe)

status=0
for f in "${formats[@]}"; do
  fake=1
  if [ "$f" = real ]; then
    # The real engine on the embedded trained model; the tests that need
    # scripted tool calls skip themselves.
    fake=0
    XDG_CACHE_HOME="$work/cache" "$work/mlx-moe" serve --port 0 2>"$work/serve-$f.log" &
  else
    MLXMOE_FAKE_SERVE="$f" "$work/mlx-moe.test" serve --port 0 2>"$work/serve-$f.log" &
  fi
  pid=$!
  addr=""
  for _ in $(seq 100); do
    addr="$(sed -n 's/^mlx-moe serve: listening on //p' "$work/serve-$f.log")"
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "serve ($f) did not start:"; cat "$work/serve-$f.log"; kill "$pid"; exit 1
  fi
  echo "== format $f at $addr"
  if ! (cd "$here" && BASE_URL="$addr" FAKE="$fake" FORMAT="$f" node --test clients.test.mjs); then
    status=1
  fi
  kill -TERM "$pid"
  if ! wait "$pid"; then
    echo "serve ($f) did not exit 0 after SIGTERM"; status=1
  fi
done
exit $status
