#!/bin/bash
# Scale run (run as root: it drops the page cache between policies): synthetic Qwen3-Coder-Next, 64 tokens, --memory 10GB, exact vs os.
M=${1:-/tmp/synth-coder-next}   # made by: mlx-moe synth --like qwen3-coder-next --out DIR
BIN=${BIN:-mlx-moe}
echo "== raw sequential read (O_DIRECT, 8 MiB)"
dd if=$M/model-00003-of-00010.safetensors of=/dev/null bs=8M count=400 iflag=direct 2>&1 | tail -1
for pol in exact os; do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  echo "== policy $pol; page cache before: $(grep -E '^Cached:' /proc/meminfo)"
  extra=""; [ $pol = exact ] && extra="--direct-io"
  /usr/bin/time -f "wall %e s, peak RSS (VmHWM) %M KB" "$BIN" generate --model $M --prompt-ids 1,2,3 --max-tokens 64 --ignore-eos --temperature 1 --seed 1 --context 256 --memory 10GB --no-warm-start --verbose --json --policy $pol $extra > /tmp/scale-$pol.json 2> /tmp/scale-$pol.err
  grep -E "prompt:|generated:|total|read |wall|experts  |budget" /tmp/scale-$pol.err
  echo "page cache after: $(grep -E '^Cached:' /proc/meminfo)"
done
echo "== same tokens: $(python3 -c "import json;a=json.load(open('/tmp/scale-exact.json'));b=json.load(open('/tmp/scale-os.json'));print(a['ids']==b['ids'], len(a['ids']))")"
echo "== raw sequential read after"
dd if=$M/model-00005-of-00010.safetensors of=/dev/null bs=8M count=400 iflag=direct 2>&1 | tail -1
