#!/usr/bin/env bash
# Constrained decoding checked with ajv (scripts/constrain/check.mjs): the
# matcher's accept/reject corpus and random samples, then `mlx-moe serve` on
# the embedded model (which cannot write JSON unaided): 50 json_schema
# requests over 10 schemas (chat response_format and Responses text.format)
# and 50 forced tool calls (OpenAI required/named, Anthropic any/tool,
# Responses required), each validated against its schema; then the AI SDK's
# generateObject and toolChoice (aisdk.mjs), validated by the SDK with zod.
#
#   scripts/constrain/run.sh               # everything
#   REQUESTS=10 scripts/constrain/run.sh   # fewer server requests
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
(cd "$here" && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; })
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
(cd "$root" && CONSTRAIN_SAMPLES="$work/samples.json" go test -count=1 -run TestSamplesParse ./constrain/ >/dev/null \
	&& go build -o "$work/mlx-moe" ./cmd/mlx-moe)

# shellcheck source=../lib/serve.sh
. "$here/../lib/serve.sh"
XDG_CACHE_HOME="$work/cache" start_serve "$work/serve.log" "$work/mlx-moe"
SAMPLES="$work/samples.json" BASE_URL="$addr" node "$here/check.mjs"
# The Vercel AI SDK's generateObject and forced toolChoice (pinned in
# package.json; they ask for node 22 and run on 20).
BASE_URL="$addr" node --no-deprecation "$here/aisdk.mjs"
