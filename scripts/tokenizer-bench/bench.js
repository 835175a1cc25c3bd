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
// Throughput is given per second of wall-clock time and per CPU second of
// the process (node: process.cpuUsage, which counts the Rust worker thread;
// Go: getrusage). The machines are shared; the CPU figures are the steadier.
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
    const m = line.match(/^BenchmarkEncode\/(\w+)\/(cached|nocache)(\/regexp2)?-\d+\s+\d+\s+\d+ ns\/op\s+([\d.]+) MB\/s\s+([\d.]+) cpu-MB\/s/);
    if (m) mbs[`${m[1]}/${m[2]}${m[3] || ''}`] = { wall: parseFloat(m[4]), cpu: parseFloat(m[5]) };
  }
  return { mbs, out };
}

async function rustBench(name, text) {
  const json = zlib.gunzipSync(fs.readFileSync(path.join(root, 'tokenizer/testdata', name, 'tokenizer.json.gz'))).toString('utf8');
  const tok = Tokenizer.fromString(json);
  const bytes = Buffer.byteLength(text, 'utf8');
  const time = async () => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    return { wall, cpu: (c.user + c.system) / 1e6, tokens: enc.getLength() };
  };
  const mb = bytes / 1e6;
  const cold = await time();
  let wall = 0, cpu = 0;
  for (let i = 0; i < passes; i++) {
    const t = await time();
    wall += t.wall;
    cpu += t.cpu;
  }
  return {
    cold: { wall: mb / cold.wall, cpu: mb / cold.cpu },
    warm: { wall: mb * passes / wall, cpu: mb * passes / cpu },
    tokens: cold.tokens,
  };
}

async function main() {
  const corpusPath = path.join(os.tmpdir(), `tokenizer-bench-corpus-${process.pid}.txt`);
  const go = goBench(corpusPath);
  const text = fs.readFileSync(corpusPath, 'utf8');
  fs.unlinkSync(corpusPath);
  console.log(`corpus: ${Buffer.byteLength(text)} bytes; ${os.cpus()[0].model}, ${os.cpus().length} CPUs; ${passes} passes each`);
  console.log('MB/s: wall-clock | per CPU second');
  console.log('tokenizer     mode       Rust MB/s          Go MB/s          Go/Rust     Go regexp2 MB/s');
  const f = (x) => `${x.wall.toFixed(2).padStart(6)} | ${x.cpu.toFixed(2).padStart(6)}`;
  for (const name of names) {
    const rust = await rustBench(name, text);
    for (const [mode, goKey] of [['cold', 'nocache'], ['warm', 'cached']]) {
      const g = go.mbs[`${name}/${goKey}`];
      const gr = go.mbs[`${name}/${goKey}/regexp2`];
      if (g === undefined || gr === undefined) throw new Error(`no Go result for ${name}/${goKey}:\n${go.out}`);
      const r = rust[mode];
      const ratio = { wall: g.wall / r.wall, cpu: g.cpu / r.cpu };
      console.log(`${name.padEnd(13)} ${mode.padEnd(6)} ${f(r)}   ${f(g)}   ${ratio.wall.toFixed(1).padStart(5)}x | ${ratio.cpu.toFixed(1).padStart(5)}x   ${f(gr)}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
