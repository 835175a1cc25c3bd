#!/usr/bin/env bash
# Runs the real coding agents, pinned in package.json, against `mlx-moe serve`:
#
#   scripted  Claude Code (`claude -p`) and the Codex CLI (`codex exec`, the
#             Responses API) against serve with its default flags and no model
#             variables. The backend is the embedded model's chat template,
#             tokenizer and detokenizer with scripted replies in place of
#             sampling (MLXMOE_FAKE_SERVE=agent, cmd/mlx-moe/serve_agent_test.go),
#             so each run is exact: a greeting ending the turn, and a shell tool
#             call round trip (the agent really runs `echo mlx-moe-agent-ok`).
#   real      The real engine (embedded model, --context 32768, --prompt-cache):
#             Claude Code with one tool and CLAUDE_CODE_MAX_OUTPUT_TOKENS, two
#             sessions, the second of which must reuse the first's cached system
#             prompt and tools (cached tokens >= the system+tools tokens, read
#             from serve's log); serve restarted, a third session must reuse
#             them from disk; then one `codex exec`. The tiny model never ends
#             its turn, so each agent reports its capped reply as an error: the
#             run passes when that is the only one.
#
#   scripts/agents/run.sh [scripted|real]...     (default: both)
#
# The agents run offline: telemetry, update checks and error reporting are
# off, and where user namespaces allow it everything runs inside a network
# namespace that holds only loopback (so any other traffic would fail).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(scripted real)

if [ -z "${MLXMOE_AGENTS_WORK:-}" ]; then
	# Outside the namespace: install the agents and build the server.
	(cd "$here" && { [ -x node_modules/.bin/claude ] || npm ci --no-audit --no-fund --silent; })
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	(cd "$root" && go test -c -o "$work/mlx-moe.test" ./cmd/mlx-moe && go build -o "$work/mlx-moe" ./cmd/mlx-moe)
	export MLXMOE_AGENTS_WORK="$work"
	if unshare -rn true 2>/dev/null; then
		echo "== offline: running inside a network namespace with only loopback"
		unshare -rn bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "${modes[@]}"
	else
		echo "== user namespaces unavailable: running on the host network (telemetry and updates are still off)"
		"$0" "${modes[@]}"
	fi
	exit
fi

work="$MLXMOE_AGENTS_WORK"
claude="$here/node_modules/.bin/claude"
codex="$here/node_modules/.bin/codex"
echo "== clients: Claude Code $("$claude" --version | cut -d' ' -f1), $("$codex" --version)"

# shellcheck source=../lib/serve.sh
. "$here/../lib/serve.sh"

# claude_p ARGS...: `claude -p` as one user (one home) with no model
# variables, talking to nothing but the server.
claude_p() {
	local home="$work/claude-home"
	mkdir -p "$home"
	env -u ANTHROPIC_MODEL -u ANTHROPIC_DEFAULT_HAIKU_MODEL -u ANTHROPIC_DEFAULT_SONNET_MODEL \
		-u ANTHROPIC_DEFAULT_OPUS_MODEL -u ANTHROPIC_SMALL_FAST_MODEL -u ANTHROPIC_API_KEY \
		HOME="$home" ANTHROPIC_BASE_URL="$addr" ANTHROPIC_AUTH_TOKEN=none \
		DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 \
		CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
		"$claude" -p "$@"
}

# codex_exec PROMPT: `codex exec` with the Responses provider pointing at the
# server; prints the agent's last message.
codex_exec() {
	local home="$work/codex-home"
	mkdir -p "$home" "$work/codex-project"
	cat >"$home/config.toml" <<EOF
model = "mlx-moe"
model_provider = "mlxmoe"
check_for_update_on_startup = false

[model_providers.mlxmoe]
name = "mlx-moe"
base_url = "$addr/v1"
wire_api = "responses"

[analytics]
enabled = false
EOF
	(cd "$work/codex-project" && CODEX_HOME="$home" HOME="$work" "$codex" exec --skip-git-repo-check \
		--output-last-message "$work/codex-last.txt" "$1" </dev/null >"$work/codex.log" 2>&1) ||
		{ cat "$work/codex.log"; return 1; }
	cat "$work/codex-last.txt"
}

# expect NAME GOT WANT: GOT must contain WANT.
status=0
expect() {
	if [[ "$2" == *"$3"* ]]; then
		echo "ok   $1"
	else
		echo "FAIL $1: got $(printf %q "$2"), want it to contain $(printf %q "$3")"
		status=1
	fi
}

scripted() {
	MLXMOE_FAKE_SERVE=agent start_serve "$work/serve-scripted.log" "$work/mlx-moe.test"
	echo "== scripted backend at $addr"
	expect "claude -p: text, end of turn" "$(claude_p "Say hello")" "Hello from mlx-moe."
	expect "claude -p: Bash tool round trip" \
		"$(claude_p "Please run the marker command." --allowedTools "Bash(echo:*)")" "The command printed: mlx-moe-agent-ok"
	expect "codex exec: text, end of turn" "$(codex_exec "Say hello")" "Hello from mlx-moe."
	expect "codex exec: shell tool round trip" "$(codex_exec "Please run the marker command.")" "The command printed: mlx-moe-agent-ok"
	stop_serve
}

# claude_session N LOG: one `claude -p` session against the real engine.
claude_session() {
	local out
	out="$(CLAUDE_CODE_MAX_OUTPUT_TOKENS=16 claude_p "Write a Python function that adds two numbers." --tools Bash --output-format json || true)"
	if grep -q '"type":"result"' <<<"$out" && { grep -q '"is_error":false' <<<"$out" || grep -q '"api_error":"max_output_tokens"' <<<"$out"; }; then
		echo "ok   claude -p session $1 against the real engine: $(grep -o '"num_turns":[0-9]*' <<<"$out")"
	else
		echo "FAIL claude -p session $1: $out"
		status=1
	fi
}

# expect_reuse WHAT LOG N POINT: generation N (1-based) of LOG reused at
# least POINT cached tokens.
expect_reuse() {
	local line cached
	line="$(grep 'msg=generation' "$2" | sed -n "${3}p")"
	cached="$(sed -n 's/.*cached_tokens=\([0-9]*\).*/\1/p' <<<"$line")"
	if [ -n "$4" ] && [ "${cached:-0}" -ge "$4" ]; then
		echo "ok   $1 reused $cached cached tokens (system+tools: $4)"
	else
		echo "FAIL $1 reused ${cached:-no} tokens; system+tools: ${4:-unknown}"
		status=1
	fi
}

real() {
	# --max-tokens caps Codex's replies (Claude Code's are capped by its
	# own variable). --prompt-cache keeps the system+tools states on disk.
	local flags=(--context 32768 --max-tokens 16 --prompt-cache "$work/prompt-cache")
	XDG_CACHE_HOME="$work/cache" start_serve "$work/serve-real.log" "$work/mlx-moe" "${flags[@]}"
	echo "== real engine (embedded model) at $addr"
	# The tiny model never ends its turn, so the output cap ends every
	# reply and Claude Code reports that as its result ("exceeded the 16
	# output token maximum"): a session passes when that is the only error.
	claude_session 1
	local n1 point
	n1="$(grep -c 'msg=generation' "$work/serve-real.log" || true)"
	point="$(grep 'msg=generation' "$work/serve-real.log" | head -1 | sed -n 's/.*cache_points=\[\([0-9]*\)\].*/\1/p')"
	claude_session 2
	# Session 2's first request starts from the state session 1 left where
	# the system prompt and tools end.
	expect_reuse "session 2's first request" "$work/serve-real.log" $((n1 + 1)) "$point"
	stop_serve
	echo "   serve's generations:"
	grep 'msg=generation' "$work/serve-real.log" | sed 's/^/   /'

	# After a restart the state comes from --prompt-cache.
	XDG_CACHE_HOME="$work/cache" start_serve "$work/serve-real2.log" "$work/mlx-moe" "${flags[@]}"
	echo "== real engine restarted at $addr: $(grep 'prompt cache:' "$work/serve-real2.log" || echo 'no prompt cache loaded')"
	claude_session 3
	expect_reuse "session 3's first request, after the restart," "$work/serve-real2.log" 1 "$point"
	# Codex reports the capped reply as "Incomplete response returned,
	# reason: max_output_tokens": the run passes when that is the only error.
	if codex_exec "Write a Python function that adds two numbers." >/dev/null ||
		grep -q "Incomplete response returned, reason: max_output_tokens" "$work/codex.log"; then
		echo "ok   codex exec against the real engine: $(grep -c 'path=/v1/responses status=200' "$work/serve-real2.log") responses"
	else
		echo "FAIL codex exec against the real engine:"
		cat "$work/codex.log"
		status=1
	fi
	stop_serve
}

for m in "${modes[@]}"; do
	"$m"
done
exit $status
