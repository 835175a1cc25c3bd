#!/usr/bin/env bash
# The first-Mac check of the Metal executor: one command that builds, runs
# the Metal tests, the shader-harness tests, the kernel benchmark on Metal
# and a short greedy generation on both devices, and writes everything to
# one report file to paste into an issue.
#
# Usage (from the repository, on an Apple silicon Mac with Go installed):
#   scripts/mac-check.sh [REPORT]        (default mac-check-report.txt)
#
# Nothing here skips quietly: the Metal tests skip only when Metal is not
# available (metal.ErrNotAvailable), and the report says which steps failed.
set -uo pipefail
cd "$(dirname "$0")/.."
report=${1:-mac-check-report.txt}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
: >"$report"
failed=()

say() { printf '%s\n' "$*" | tee -a "$report"; }
# step NAME CMD...: runs CMD, appends its output to the report, records a failure.
step() {
	local name=$1
	shift
	say ""
	say "=== $name: $*"
	local start=$SECONDS
	"$@" >>"$report" 2>&1
	local rc=$?
	say "=== $name: exit $rc after $((SECONDS - start)) s"
	[ $rc -eq 0 ] || failed+=("$name")
	return $rc
}

say "mlx-moe mac-check, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "commit: $(git rev-parse HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')"
say "machine: $(sysctl -n machdep.cpu.brand_string 2>/dev/null), $(sysctl -n hw.memsize 2>/dev/null) bytes RAM"
say "macOS: $(sw_vers -productVersion 2>/dev/null) ($(sw_vers -buildVersion 2>/dev/null)); $(go version)"
say "clang: $(clang --version 2>/dev/null | head -1)"

step build go build -o "$bin/mlx-moe" ./cmd/mlx-moe
step vet go vet ./metal/... ./kernels/...

# The Metal executor's tests, verbose so the report shows every test, skip
# and the host-op counts.
step metal-tests go test -count=1 -v -timeout 20m ./metal/...
if grep -q -- '--- SKIP' "$report"; then
	say "note: some tests skipped; a Metal test may skip only with \"Metal is not available\" (see the SKIP lines above)"
fi
# The shader harness (the shaders compiled as C++ on the CPU) must build
# and pass on macOS too.
step harness-tests go test -count=1 -timeout 20m ./kernels/mslharness/
step metal-bench go test -run '^$' -bench . -benchtime 2s ./metal/
step kernel-bench "$bin/mlx-moe" bench --device metal --json

# A short greedy generation on the embedded model on each device; the tokens
# must agree (both match the reference logits within float32 reordering).
prompt='def fibonacci(n):'
for dev in cpu metal; do
	step "generate-$dev" sh -c '"$1" generate --device "$2" --max-tokens 32 --json --prompt "$3" | tee "$4"' _ \
		"$bin/mlx-moe" "$dev" "$prompt" "$bin/$dev.json"
done
# --device metal falls back to the CPU with a message when Metal cannot be
# opened: that is a failure here, not a pass.
if grep -q 'running on the CPU instead' "$report"; then
	say "a --device metal step (bench or generate) ran on the CPU: see the message above"
	failed+=(metal-fallback)
fi
cpu_ids=$(grep -o '"ids":\[[^]]*\]' "$bin/cpu.json")
metal_ids=$(grep -o '"ids":\[[^]]*\]' "$bin/metal.json")
say ""
if [ -n "$cpu_ids" ] && [ "$cpu_ids" = "$metal_ids" ]; then
	say "generate: cpu and metal produced the same 32 tokens"
else
	say "generate: tokens differ or are missing: cpu $cpu_ids, metal $metal_ids"
	failed+=(generate-compare)
fi

say ""
if [ ${#failed[@]} -eq 0 ]; then
	say "mac-check: all steps passed; report in $report"
else
	say "mac-check: FAILED steps: ${failed[*]}; report in $report"
	exit 1
fi
