// make-goldens.js writes the golden ids that tokenizer/'s tests compare
// with, produced by Hugging Face's Rust tokenizers library (0.22.2, through
// the npm package @anush008/tokenizers).
//
//   cd scripts/tokenizer-bench && npm install && node make-goldens.js
//
// It copies the real tokenizers from ../shared into tokenizer/testdata
// (gzip-compressed) and writes synthetic ones built from the vocabulary of
// the tiny code model, for what no real fixture uses: two SentencePiece-style
// files (Llama/Mixtral legacy normalizers with byte fallback; the Metaspace
// pre-tokenizer with unknown-token fusing) and two byte-level variants
// (ByteLevel's own regex, Digits, every Split behavior, more normalizers).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { Tokenizer } = require('@anush008/tokenizers');

const root = path.resolve(__dirname, '../..');
const testdata = path.join(root, 'tokenizer/testdata');
const shared = path.resolve(root, '../shared');

// Deterministic random numbers (mulberry32).
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- SentencePiece-style tokenizers built from a byte-level vocabulary ----

function byteLevelAlphabet() {
  const b2c = new Map();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae) b2c.set(b, String.fromCodePoint(b));
    else b2c.set(b, String.fromCodePoint(256 + n++));
  }
  const c2b = new Map([...b2c].map(([b, c]) => [c, b]));
  return c2b;
}

// toPiece converts a byte-level token to SentencePiece form ("▁" for space),
// or null when its bytes are not valid UTF-8 on their own.
function toPiece(tok, c2b) {
  const bytes = [];
  for (const c of tok) {
    if (!c2b.has(c)) return null;
    bytes.push(c2b.get(c));
  }
  const buf = Buffer.from(bytes);
  const s = buf.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(buf)) return null;
  return s.replace(/ /g, '\u2581');
}

function sentencePieceModel(src, specials, extraChars) {
  const c2b = byteLevelAlphabet();
  const vocab = {};
  let next = 0;
  const add = (t) => { if (!(t in vocab)) vocab[t] = next++; };
  specials.forEach((s) => add(s.content));
  for (let b = 0; b < 256; b++) add('<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>');
  extraChars.forEach(add);
  const entries = Object.entries(src.model.vocab).sort((a, b) => a[1] - b[1]);
  for (const [tok] of entries) {
    const p = toPiece(tok, c2b);
    if (p !== null && p !== '') add(p);
  }
  const merges = [];
  for (const m of src.model.merges) {
    const [a, b] = Array.isArray(m) ? m : m.split(' ');
    const pa = toPiece(a, c2b), pb = toPiece(b, c2b);
    if (pa && pb && (pa + pb) in vocab) merges.push([pa, pb]);
  }
  // Merges for the extra characters, so that they also form longer tokens.
  for (const c of extraChars) {
    const t = '\u2581' + c;
    add(t);
    merges.push(['\u2581', c]);
  }
  return { vocab, merges };
}

function addedTokens(list) {
  return list.map((t) => ({
    id: t.id, content: t.content, single_word: !!t.single_word, lstrip: !!t.lstrip, rstrip: !!t.rstrip,
    normalized: !!t.normalized, special: !!t.special,
  }));
}

function writeSentencePieceFixtures() {
  const src = JSON.parse(fs.readFileSync(path.join(shared, 'models/qwen3_next-code-tiny-4bit/tokenizer.json'), 'utf8'));
  const extra = ['é', 'ü', '中', '文', '日', 'ñ'];

  // Llama/Mixtral (legacy): Prepend + Replace normalizers, no pre-tokenizer,
  // byte fallback, a TemplateProcessing that adds <s>.
  {
    const specials = [
      { content: '<unk>', special: true }, { content: '<s>', special: true }, { content: '</s>', special: true },
    ];
    const { vocab, merges } = sentencePieceModel(src, specials, extra);
    const more = [
      { content: '[INST]', special: true }, { content: '[/INST]', special: true },
      { content: '[TOOL]', normalized: true },
      { content: '<mask>', lstrip: true, rstrip: true, special: true },
      { content: '<w>', single_word: true },
    ];
    let id = Object.keys(vocab).length;
    const added = [...specials.map((s) => ({ ...s, id: vocab[s.content] })), ...more.map((s) => ({ ...s, id: id++ }))];
    const tok = {
      version: '1.0', truncation: null, padding: null,
      added_tokens: addedTokens(added),
      normalizer: { type: 'Sequence', normalizers: [
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
      ] },
      pre_tokenizer: null,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: { type: 'Sequence', decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' }, { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ] },
      model: {
        type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges,
      },
    };
    writeFixture('llama_legacy', tok, {
      add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>',
      tokenizer_class: 'LlamaTokenizer',
    });
  }

  // Metaspace pre-tokenizer (prepend_scheme "first", split), no byte
  // fallback: characters outside the vocabulary become <unk>, fused.
  {
    const specials = [
      { content: '<unk>', special: true }, { content: '<s>', special: true }, { content: '</s>', special: true },
    ];
    const { vocab, merges } = sentencePieceModel(src, specials, extra);
    for (let b = 0; b < 256; b++) delete vocab['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'];
    // Renumber densely.
    const dense = {};
    Object.entries(vocab).sort((a, b) => a[1] - b[1]).forEach(([t], i) => { dense[t] = i; });
    const added = specials.map((s) => ({ ...s, id: dense[s.content] }));
    const meta = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true };
    const tok = {
      version: '1.0', truncation: null, padding: null,
      added_tokens: addedTokens(added),
      normalizer: null,
      pre_tokenizer: meta,
      post_processor: null,
      decoder: meta,
      model: {
        type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: false, ignore_merges: false, vocab: dense, merges,
      },
    };
    writeFixture('metaspace', tok, { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
  }
}

// Byte-level variants of the tiny code model's tokenizer that exercise the
// parts no real fixture uses: ByteLevel's own regex and prefix space,
// Digits, every Split behavior, inverted splits, string and regex patterns,
// the Llama-3/GLM-4 pattern, and the NFKC, Lowercase, Strip and Replace
// normalizers.
function writeByteLevelVariants() {
  const base = JSON.parse(fs.readFileSync(path.join(shared, 'models/qwen3_next-code-tiny-4bit/tokenizer.json'), 'utf8'));
  const config = fs.readFileSync(path.join(shared, 'models/qwen3_next-code-tiny-4bit/tokenizer_config.json'), 'utf8');
  const variant = (name, edit) => {
    const tok = JSON.parse(JSON.stringify(base));
    edit(tok);
    writeTestdata(name, JSON.stringify(tok), config);
  };
  variant('gpt2_regex', (tok) => {
    tok.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    ] };
  });
  const split = (pattern, behavior, invert) => ({ type: 'Split', pattern, behavior, invert: !!invert });
  variant('split_behaviors', (tok) => {
    tok.normalizer = { type: 'Sequence', normalizers: [
      { type: 'NFKC' }, { type: 'Lowercase' }, { type: 'Strip', strip_left: true, strip_right: true },
      { type: 'Replace', pattern: { Regex: '\\s{2,}' }, content: '\t' },
    ] };
    tok.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      split({ String: '-' }, 'MergedWithPrevious'),
      split({ Regex: '[0-9]+' }, 'Contiguous', true),
      split({ String: ',' }, 'Removed'),
      split({ Regex: '\\.' }, 'MergedWithNext'),
      split({ Regex: '[a-z]+' }, 'Isolated', true),
      split({ Regex: '[!?]' }, 'Contiguous'),
      split({ Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, 'Isolated'),
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ] };
  });
}

function writeFixture(name, tok, config) {
  writeTestdata(name, JSON.stringify(tok, null, 1), JSON.stringify(config, null, 2) + '\n');
}

// writeTestdata stores a tokenizer as testdata/NAME/tokenizer.json.gz (+
// tokenizer_config.json).
function writeTestdata(name, tokenizerJSON, configJSON) {
  const dir = path.join(testdata, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json.gz'), zlib.gzipSync(tokenizerJSON, { level: 9 }));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), configJSON);
}

function readTestdata(name) {
  return zlib.gunzipSync(fs.readFileSync(path.join(testdata, name, 'tokenizer.json.gz'))).toString('utf8');
}

// ---- the strings ----

function corpus() {
  const ref = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers/reference.json'), 'utf8'));
  const texts = ref.qwen3.shared.map((s) => s.text);
  const edge = [
    '', ' ', '  ', '\n', '\r\n', ' \n', '\t', 'a', "'", "'s", "'S", "'ſ", "'Re", "'LL", "'lL", "x'd", "''", "' s",
    '\u000b\u000c', '\x1c\x1d\x1e\x1f', '\x85', 'a\u00a0b', 'a\u2029b', '\u3000\u3000x', ' \u3000x', '\t\tx', '\u200b\u200bx',
    'x  ', 'x \n', 'x \n ', 'x\n \n', ' \r\n \r', '  \t\n\t  y', 'abc\r', '\r\r\n\n', '!\n', '! \n\n', ' !!\r\n\r',
    '1234567', '١٢٣٤٥', 'Ⅻ 2³ ½', '12a34', 'a1b2', '中1文2', 'ｱｲｳ', 'ひらがなカタカナ漢字', '𠀀𠀁', 'ﾟ',
    'e\u0301', 'A\u030a', '\u1100\u1161\u11a8', 'Å', 'ﬃ', 'İstanbul', 'ǅemal', 'Ǳ', 'ΣΑΣ σας',
    '<|im_start|>', '<|im_start', '|im_start|>', '<|im_start|><|im_start|>', 'a<|im_end|>b<|endoftext|>c',
    ' <|im_end|> ', '<think></think>', '<s> hello</s>', '[INST] hi [/INST]', 'x [TOOL] y[TOOL]z', 'a <mask> b', '<mask>',
    '<w>', 'x<w>', '<w>y', ' <w> ', '_<w>', '<w>_', 'é<w>', '<w>é', '1<w>', '-<w>-', '\u0301<w>', '<w><w>', '²<w>', 'Ⅻ<w>', '\u200d<w>', '‿<w>', '·<w>', '<w>\u0345', '<w>٣', '<w>²', 'a\t<mask>\n b',
    '<｜begin▁of▁sentence｜>hi', '<｜end▁of▁sentence｜>', '▁a▁▁b', '▁', '▁▁', ' ▁ ',
    '😀', '👨‍👩‍👧‍👦', '🏳️‍🌈', '\uFFFD', 'a\uFFFDb', '\uFEFFbom', '\u0000nul', 'tab\tand\u0000zero',
    'x'.repeat(300), ' '.repeat(300) + 'x', 'ab '.repeat(200), '\n'.repeat(50), '1'.repeat(40),
    'https://x.org/a?b=c&d=e#f', 'a.b.c.d', '...', '---', '___', '==>', '!=', '//', '/* c */', '#!/bin/sh',
  ];
  const code = [
    'func (t *Tokenizer) Encode(text string) []int {\n\treturn t.encode(text)\n}\n',
    'def f(x):\n    """doc"""\n    return {k: v for k, v in x.items() if v}\n\n\nclass A(B):\n    pass\n',
    '#include <stdio.h>\nint main(void) {\n  printf("%d\\n", 42);\n  return 0;\n}\n',
    'const re = /\\s+(?!\\S)/gu; // 正则\nlet s = `${a}-${b}`;\n',
    '{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "°C"}}',
    '| a | b |\n|---|---|\n| 1 | 2 |\n',
    '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n<|im_end|>\n<|im_start|>assistant\n',
  ];
  const r = rng(20261126);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const atoms = [
    'the', 'The', ' quick', 'brown', 'fox', "'s", "'t", "'re", "'VE", "'m", "'ll", "'D", "'", '"', 'don', 'I',
    ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', '\u00a0', '\u3000', '\u2028', '\u200b', '\x0b', '\x1c', '\x85',
    '0', '7', '42', '123456', '3.14', '1e-9', '٣', '²', '½', 'Ⅳ',
    '.', ',', '!', '?', ';', ':', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '-', '_', '=', '+', '*', '&', '%', '$', '#', '@', '`', '~', '^', '|',
    'é', 'e\u0301', 'ü', 'ñ', 'ß', 'ſ', 'Ω', 'щ', 'ж', 'α', 'ω', 'ا', 'ب', 'ह', 'ि', '\u093f', 'ก', 'ั',
    '中', '文', '测试', '日本', 'の', 'は', 'カ', 'ナ', 'ー', '한', '국', '어', 'ｶ', '︙', '。', '，', '「', '」',
    '😀', '🎉', '👍🏽', '‍', '❤️', '🇩🇪', '∑', '→', '€', '£', '©', '™', '\u0301', '\ufeff', '\ufffd',
    '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>', '<tool_call>', '<s>', '</s>', '[INST]', '[TOOL]', '<mask>',
    '<｜begin▁of▁sentence｜>', '▁', 'ĠĠ', 'Ċ', 'self', '.append', 'return', 'def', 'import', 'numpy', '__init__',
  ];
  for (let i = 0; i < 400; i++) {
    const n = 1 + Math.floor(r() * 24);
    let s = '';
    for (let j = 0; j < n; j++) s += pick(atoms);
    texts.push(s);
  }
  // Random code points from all planes (no surrogates).
  for (let i = 0; i < 100; i++) {
    let s = '';
    const n = 1 + Math.floor(r() * 12);
    for (let j = 0; j < n; j++) {
      let cp;
      const k = r();
      if (k < 0.3) cp = 0x20 + Math.floor(r() * 0x60);
      else if (k < 0.6) cp = Math.floor(r() * 0x800);
      else if (k < 0.9) cp = Math.floor(r() * 0x10000);
      else cp = 0x10000 + Math.floor(r() * 0x20000);
      if (cp >= 0xd800 && cp < 0xe000) cp = 0x41;
      s += String.fromCodePoint(cp);
    }
    texts.push(s);
  }
  return [...texts, ...edge, ...code];
}

// Byte strings that are not valid UTF-8: the Go tokenizer must read them as
// Hugging Face reads their lossy conversion (the WHATWG decoder node uses
// replaces maximal subparts, like Rust's String::from_utf8_lossy).
const invalidUTF8 = [
  'ff', 'c3', 'e282', 'e28261', 'f09f98', 'f09f9841', 'c0af', 'eda080', 'f4908080', '41ff42', 'e2ff82ac',
  '80808080', 'fe', 'f8888080', '68c3a9c3', '5b7cc3a97c5d',
];

// Random id sequences for decoding, with partial UTF-8 bytes, special
// tokens and ids outside the vocabulary.
function decodeCases(tok, size, r) {
  const cases = [];
  for (let i = 0; i < 200; i++) {
    const n = 1 + Math.floor(r() * 10);
    const ids = [];
    for (let j = 0; j < n; j++) {
      const k = r();
      if (k < 0.15) ids.push(Math.floor(r() * 8));
      else if (k < 0.2) ids.push(size + Math.floor(r() * 3));
      else if (k < 0.6) ids.push(Math.floor(r() * Math.min(size, 400)));
      else ids.push(Math.floor(r() * size));
    }
    cases.push(ids);
  }
  return cases;
}

async function goldens(name, texts) {
  const tok = Tokenizer.fromString(readTestdata(name));
  const out = { tokenizer: name, library: 'tokenizers 0.22.2 (npm @anush008/tokenizers 0.6.0)', encode: [], decode: [] };
  for (const text of texts) {
    const e = await tok.encode(text, null, { addSpecialTokens: false });
    const es = await tok.encode(text, null, { addSpecialTokens: true });
    const ids = e.getIds();
    out.encode.push({
      text, ids, ids_special: es.getIds(),
      decoded: await tok.decode(ids, false), decoded_skip: await tok.decode(ids, true),
    });
  }
  for (const hex of invalidUTF8) {
    const text = Buffer.from(hex, 'hex').toString('utf8');
    const e = await tok.encode(text, null, { addSpecialTokens: false });
    out.encode.push({ bytes_hex: hex, text, ids: e.getIds() });
  }
  const size = tok.getVocabSize(true);
  for (const ids of decodeCases(tok, size, rng(size))) {
    out.decode.push({ ids, decoded: await tok.decode(ids, false), decoded_skip: await tok.decode(ids, true) });
  }
  const dst = path.join(testdata, 'golden', name + '.json.gz');
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.writeFileSync(dst, zlib.gzipSync(JSON.stringify(out), { level: 9 }));
  console.log(`${name}: ${out.encode.length} texts, ${out.decode.length} id sequences -> ${path.relative(root, dst)}`);
}

async function main() {
  writeSentencePieceFixtures();
  writeByteLevelVariants();
  const texts = corpus();
  // The real tokenizers, copied from ../shared (tests must not read it).
  const real = {
    qwen3: 'tokenizers/qwen3',
    deepseek_v3: 'tokenizers/deepseek_v3',
    fixture_qwen: 'fixtures/qwen3_moe-4bit',
    code_tiny: 'models/qwen3_next-code-tiny-4bit',
  };
  for (const [name, dir] of Object.entries(real)) {
    const read = (f) => fs.readFileSync(path.join(shared, dir, f), 'utf8');
    writeTestdata(name, read('tokenizer.json'), read('tokenizer_config.json'));
  }
  // The acceptance strings: Hugging Face's ids and decoded text as recorded
  // in ../shared/tokenizers/reference.json.
  const ref = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers/reference.json'), 'utf8'));
  fs.writeFileSync(path.join(testdata, 'reference.json'),
    JSON.stringify({ qwen3: ref.qwen3.shared, deepseek_v3: ref.deepseek_v3.shared }, null, 1) + '\n');
  for (const name of [...Object.keys(real), 'llama_legacy', 'metaspace', 'gpt2_regex', 'split_behaviors']) await goldens(name, texts);
}

main().catch((e) => { console.error(e); process.exit(1); });
