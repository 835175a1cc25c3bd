#!/bin/bash
# Scale run on a synthetic checkpoint (run as root: it drops the page cache between policies).
#   mlx-moe synth --like qwen3-coder-next --out DIR [--scale 0.35]
#   BIN=./mlx-moe scripts/scale/run.sh DIR [MEMORY] [TOKENS] [PROMPT_TOKENS]
#   (POLICIES="exact os" to run some policies only, REPLAY=0 to skip step 1)
# 1. The pager alone (scripts/scale/pagerio): decode routes replayed with no compute, pager GB/s next
#    to a raw O_DIRECT read of the same files in the same run.
# 2. The engine: exact (--direct-io), os and fast policies one after the other, with generate --json stats.
# dram_read from `mlx-moe bench` first, for the compute roofline.
set -e
M=${1:-/tmp/synth-coder-next}
MEM=${2:-10GB}
TOK=${3:-64}
PROMPT=${4:-3}
BIN=${BIN:-mlx-moe}
OUT=${OUT:-/tmp/scale}
mkdir -p $OUT
here=$(cd "$(dirname "$0")" && pwd)
ids=$(seq -s, 1 $PROMPT)
echo "== dram_read (the compute roofline's bandwidth), wall and CPU clock"
for clock in wall cpu; do "$BIN" bench --json --seconds 0.5 --clock $clock | grep '"dram_read"'; done
# raw: 512 MiB sequential O_DIRECT reads at a random place of two shards, the
# engine's IO roofline in this run.
raw() {
  for f in $(ls $M/*.safetensors | sed -n '2p;$p'); do
    dd if=$f of=/dev/null iflag=direct bs=8M count=64 skip=$((RANDOM % 200)) 2>&1 | tail -1
  done
}
if [ "${REPLAY:-1}" = 1 ]; then
  echo "== pager alone, decode replay, --memory $MEM"
  (cd "$here/../.." && go run ./scripts/scale/pagerio --model $M --memory $MEM --tokens 64 --raw-gb 1)
  echo "== pager alone, with stand-in compute (2 ms a layer, busy) and next-layer prefetch"
  (cd "$here/../.." && go run ./scripts/scale/pagerio --model $M --memory $MEM --tokens 32 --raw-gb 1 --layer-ms 2 --spin --prefetch)
fi
echo "== raw O_DIRECT read before the engine"; raw
for pol in ${POLICIES:-exact os fast}; do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  echo "== policy $pol; page cache before: $(grep -E '^Cached:' /proc/meminfo)"
  extra=""; [ $pol != os ] && extra="--direct-io"
  /usr/bin/time -f "wall %e s, peak RSS (VmHWM) %M KB" "$BIN" generate --model $M --prompt-ids $ids --max-tokens $TOK --ignore-eos \
    --temperature 1 --seed 1 --context $((PROMPT + TOK + 64)) --memory $MEM --no-warm-start --verbose --json --policy $pol $extra > $OUT/$pol.json 2> $OUT/$pol.err
  grep -E "prompt:|generated:|total|prefetch:|repeated|read |IO wait|wall|experts  |budget" $OUT/$pol.err
  python3 -c "import json;print('stats', json.load(open('$OUT/$pol.json'))['stats'])"
  echo "page cache after: $(grep -E '^Cached:' /proc/meminfo)"
done
echo "== raw O_DIRECT read after the engine"; raw
[ -f $OUT/exact.json ] && [ -f $OUT/os.json ] && echo "== exact and os generate the same tokens: $(python3 -c "import json;a=json.load(open('$OUT/exact.json'));b=json.load(open('$OUT/os.json'));print(a['ids']==b['ids'], len(a['ids']))")"
