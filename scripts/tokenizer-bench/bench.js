// bench.js compares the encode throughput of mlx-moe's Go tokenizer with
// Hugging Face's Rust tokenizers library (0.22.2 through node), single
// thread, on the same ~1 MB of mixed prose and source code, in one run.
//
//   cd scripts/tokenizer-bench && npm install && node bench.js
//
// The Go side is `go test -bench Encode ./tokenizer`, which also writes the
// text it encodes (TOKENIZER_BENCH_CORPUS_OUT); the Rust side then encodes
// that text with the same tokenizer files (tokenizer/testdata).
//   cold:  first encode after loading (Go: piece cache cleared every pass)
//   warm:  mean of the following passes (Go: piece cache warm)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { execFileSync } = require('child_process');
const { Tokenizer } = require('@anush008/tokenizers');

const root = path.resolve(__dirname, '../..');
const names = ['qwen3', 'deepseek_v3'];
const passes = 5;

function goBench(corpusPath) {
  const out = execFileSync('go', ['test', './tokenizer', '-run', '^$', '-bench', 'Encode/', '-benchtime', `${passes}x`], {
    cwd: root, env: { ...process.env, TOKENIZER_BENCH_CORPUS_OUT: corpusPath }, encoding: 'utf8',
  });
  const mbs = {};
  for (const line of out.split('\n')) {
    const m = line.match(/^BenchmarkEncode\/(\w+)\/(cached|nocache)(\/regexp2)?-\d+\s+\d+\s+\d+ ns\/op\s+([\d.]+) MB\/s/);
    if (m) mbs[`${m[1]}/${m[2]}${m[3] || ''}`] = parseFloat(m[4]);
  }
  return { mbs, out };
}

async function rustBench(name, text) {
  const json = zlib.gunzipSync(fs.readFileSync(path.join(root, 'tokenizer/testdata', name, 'tokenizer.json.gz'))).toString('utf8');
  const tok = Tokenizer.fromString(json);
  const bytes = Buffer.byteLength(text, 'utf8');
  const time = async () => {
    const t0 = process.hrtime.bigint();
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { s, tokens: enc.getLength() };
  };
  const cold = await time();
  let warm = 0;
  for (let i = 0; i < passes; i++) warm += (await time()).s;
  return { cold: bytes / 1e6 / cold.s, warm: bytes / 1e6 / (warm / passes), tokens: cold.tokens, bytes };
}

async function main() {
  const corpusPath = path.join(os.tmpdir(), `tokenizer-bench-corpus-${process.pid}.txt`);
  const go = goBench(corpusPath);
  const text = fs.readFileSync(corpusPath, 'utf8');
  fs.unlinkSync(corpusPath);
  console.log(`corpus: ${Buffer.byteLength(text)} bytes; ${os.cpus()[0].model}, ${os.cpus().length} CPUs; ${passes} passes each`);
  console.log('tokenizer     mode   Rust MB/s   Go MB/s   Go/Rust   Go regexp2 MB/s');
  for (const name of names) {
    const rust = await rustBench(name, text);
    for (const [mode, goKey, rustMBs] of [['cold', 'nocache', rust.cold], ['warm', 'cached', rust.warm]]) {
      const g = go.mbs[`${name}/${goKey}`];
      const gr = go.mbs[`${name}/${goKey}/regexp2`];
      if (g === undefined) throw new Error(`no Go result for ${name}/${goKey}:\n${go.out}`);
      console.log(`${name.padEnd(13)} ${mode.padEnd(6)} ${rustMBs.toFixed(2).padStart(9)} ${g.toFixed(2).padStart(9)} ${(g / rustMBs).toFixed(1).padStart(8)}x ${gr.toFixed(2).padStart(12)}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
