#!/usr/bin/env bash
# Measures how fast a disconnected request frees the engine: the real
# engine (embedded model, --context 20000) gets a ~17k-token streamed chat
# request whose client disconnects 2 s into its prefill; a short request
# sent right after waits for the cancelled prefill to reach its next chunk
# boundary. Reported against two figures measured in the same run: the
# short request alone (engine idle), and one 512-token prefill chunk (the
# most the wait may add). Without chunking the wait would be the rest of
# the 16k-token prefill.
#
#   scripts/agents/cancel.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/mlx-moe" ./cmd/mlx-moe)
# shellcheck source=../lib/serve.sh
. "$root/scripts/lib/serve.sh"
XDG_CACHE_HOME="$work/cache" start_serve "$work/serve.log" "$work/mlx-moe" --context 20000 --quiet

# chat TEXT MAXTOKENS STREAM: the request body for one user message.
chat() {
	python3 -c 'import json,sys; print(json.dumps({"model": "m", "max_tokens": int(sys.argv[2]), "stream": sys.argv[3] == "1",
		"temperature": 0, "messages": [{"role": "user", "content": sys.argv[1]}]}))' "$1" "$2" "$3"
}
# timed BODY: seconds until the whole answer arrived.
timed() {
	curl -s -o /dev/null -w '%{time_total}' "$addr/v1/chat/completions" -H 'Content-Type: application/json' -d "$1"
}
prompt_tokens() {
	curl -s "$addr/v1/chat/completions" -H 'Content-Type: application/json' -d "$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["usage"]["prompt_tokens"])'
}

long="$(python3 -c 'print("".join(f"def f{i}(a, b):\n    return a * {i} + b\n\n" for i in range(900)))')"
chunk="$(python3 -c 'print("".join(f"class C{i}:\n    x = {i}\n" for i in range(120)))')"
short="def add(a, b):"

timed "$(chat "$short" 1 0)" >/dev/null # warm up
n_chunk="$(prompt_tokens "$(chat "$chunk" 1 0)")"
t_chunk="$(timed "$(chat "$chunk x" 1 0)")"
t_alone="$(timed "$(chat "$short 1" 1 0)")"

# Rendering and tokenizing the long prompt (count_tokens does just that)
# comes before its prefill: the drop is 2 s after the prefill starts.
count="$(python3 -c 'import json,sys; print(json.dumps({"model": "m", "messages": [{"role": "user", "content": sys.argv[1]}]}))' "$long")"
t_render="$(curl -s -o /dev/null -w '%{time_total}' "$addr/v1/messages/count_tokens" -H 'Content-Type: application/json' -d "$count")"
n_long="$(curl -s "$addr/v1/messages/count_tokens" -H 'Content-Type: application/json' -d "$count" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["input_tokens"])')"
# The long request, dropped 2 s into its prefill, then at once the short one.
curl -s -N -o /dev/null --max-time "$(python3 -c "print($t_render + 2)")" "$addr/v1/chat/completions" \
	-H 'Content-Type: application/json' -d "$(chat "$long" 16 1)" || true
t_after="$(timed "$(chat "$short 2" 1 0)")"
cancelled="$(curl -s "$addr/metrics" | sed -n 's/^mlxmoe_generations_cancelled_total //p')"

python3 - "$n_long" "$n_chunk" "$t_chunk" "$t_alone" "$t_after" "$cancelled" "$t_render" <<'EOF'
import sys
n_long, n_chunk = int(sys.argv[1]), int(sys.argv[2])
t_chunk, t_alone, t_after = map(float, sys.argv[3:6])
print(f"rendering and tokenizing the long prompt: {float(sys.argv[7]):.3f} s")
wait = t_after - t_alone
per_chunk = t_chunk * 512 / n_chunk
print(f"long prompt: {n_long} tokens, dropped 2 s into its prefill (cancelled generations: {sys.argv[6]})")
print(f"short request alone: {t_alone:.3f} s; right after the drop: {t_after:.3f} s; queue wait {wait:.3f} s")
print(f"one 512-token chunk (from a {n_chunk}-token prefill at position 0): {per_chunk:.3f} s; wait / chunk = {wait / per_chunk:.2f}")
print(f"the rest of the long prefill, had it run on: about {per_chunk * n_long / 512 - 2:.0f} s at that rate (more: attention grows with position)")
EOF
