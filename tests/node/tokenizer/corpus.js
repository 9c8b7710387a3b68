// Deterministic tokenizer test corpus: a seeded PRNG and a fixed quota per
// category, so every run (and every machine) tests the same strings.
'use strict';

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = {
  latin: 'the quick brown fox jumps over lazy dog Once upon a time there was little girl named Lily She loved play outside with her friends sun was shining birds singing don\'t won\'t it\'s I\'m we\'ve they\'re you\'ll he\'d THE CAT\'S'.split(' '),
  french: 'café naïve élève où déjà garçon Noël français être voilà crème brûlée hôpital à côté'.split(' '),
  german: 'Straße Äpfel über Größe schön Mädchen Übung Fußgänger Zürich Ångström'.split(' '),
  vietnamese: 'Tiếng Việt người đẹp quá xin chào cảm ơn nhiều Hà Nội phở'.split(' '),
  cyrillic: 'Привет мир однажды жила была девочка Москва съешь ещё этих мягких французских булок ЁЖИК'.split(' '),
  greek: 'Γειά σου κόσμε καλημέρα Ελλάδα φιλοσοφία ἀρχή λόγος ΑΘΗΝΑ'.split(' '),
  arabic: 'مرحبا بالعالم اللغة العربية كتاب مدرسة السَّلَامُ عَلَيْكُمْ شكرا'.split(' '),
  hebrew: 'שלום עולם עברית ספר בְּרֵאשִׁית בָּרָא תודה'.split(' '),
  devanagari: 'नमस्ते दुनिया हिन्दी भाषा किताब विद्यालय धन्यवाद क्षत्रिय'.split(' '),
  thai: 'สวัสดีชาวโลก ภาษาไทย ขอบคุณครับ กรุงเทพมหานคร น้ำ'.split(' '),
  han: '你好世界 中文 汉字 北京 我们 学习 人工智能 機器學習 龍'.split(' '),
  japanese: 'こんにちは 世界 ひらがな カタカナ 東京 ありがとう ございます ラーメン ｶﾀｶﾅ'.split(' '),
  korean: '안녕하세요 세계 한국어 감사합니다 서울 사랑 ᄒᆞᆫ글'.split(' '),
  bengali: 'বাংলা ভাষা নমস্কার ধন্যবাদ'.split(' '),
  tamil: 'தமிழ் வணக்கம் நன்றி உலகம்'.split(' '),
  georgian: 'გამარჯობა საქართველო ენა'.split(' '),
  armenian: 'Բարեւ աշխարհ հայերեն'.split(' '),
  ethiopic: 'ሰላም ዓለም አማርኛ'.split(' '),
};

const PUNCT = ['.', ',', '!', '?', ';', ':', '…', '—', '–', '"', '«', '»', '“', '”', '‘', '’', '(', ')', '、', '。', '！', '？', '،', '؟', '।'];

const SPECIALS = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>',
  '<|reserved_special_token_0|>', '<|reserved_special_token_250|>', '<|python_tag|>', '<|finetune_right_pad_id|>',
  '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>', '<tool_call>', '</tool_call>',
  '<|fim_prefix|>', '<|vision_start|>', '<s>', '</s>', '<unk>',
];
const NEAR_MISSES = [
  '<|begin_of_text', '|begin_of_text|>', '<|begin_of_text |>', '<| begin_of_text|>', '< s>', '<s >', '</s', '<S>',
  '</s>x', 'x<s>', '<<s>>', '<|im_start|', '<|im_end', '<think', 'think>', '</ think>', '<|endoftext|>>', '<|<|eot_id|>|>',
  '<|reserved_special_token_999|>', '<unk', '<0x41>', '<0x0A>', '▁', '▁▁x', 'Ġhello', 'Ċ', '<|', '|>',
];

const SPACES = [' ', '  ', '\t', '\n', '\r\n', '\n\n', '\r', ' \n ', '\u00a0', '\u2000', '\u2003', '\u2009', '\u200a', '\u3000',
  '\u0085', '\u2028', '\u2029', '\u180e', '\ufeff', '\u1680', '\u202f', '\u205f', '\u000b', '\u000c', '\u200b'];

const EMOJI = ['😀', '🙂', '🎉', '❤️', '👍', '👍🏽', '👋🏿', '👩‍💻', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇺🇸', '🇯🇵', '1️⃣', '#️⃣', '🧑🏻‍🤝‍🧑🏿', '😶‍🌫️', '🫠', '✨', '☕', '🐍', '©', '™', '↔', '★'];

function makeRng(seed) {
  const r = mulberry32(seed);
  const api = {
    next: r,
    int: (n) => Math.floor(r() * n),
    pick: (arr) => arr[Math.floor(r() * arr.length)],
    chance: (p) => r() < p,
  };
  return api;
}

function prose(rng, words, n) {
  const out = [];
  for (let i = 0; i < n; ++i) {
    let w = rng.pick(words);
    if (rng.chance(0.1)) w = w[0].toUpperCase() + w.slice(1);
    out.push(w);
    if (rng.chance(0.15)) out.push(rng.pick(PUNCT));
  }
  // CJK and Thai are usually written without spaces.
  const sep = words === WORDS.han || words === WORDS.japanese || words === WORDS.thai ? (rng.chance(0.5) ? '' : ' ') : ' ';
  let s = out.join(sep);
  if (rng.chance(0.3)) s = s.normalize(rng.chance(0.5) ? 'NFD' : 'NFC');
  return s;
}

function code(rng) {
  const name = rng.pick(['foo', 'bar_baz', 'getValue', 'x1', 'HTTPServer', 'données', '_private', 'snake_case_name']);
  const templates = [
    () => `def ${name}(a, b=2):\n    """Docstring."""\n    return a ** b  # power\n`,
    () => `int ${name}(int x) {\n\tif (x <= 0) return -1;\n\treturn x * ${rng.int(1000)};\n}\n`,
    () => `const ${name} = async (req, res) => {\n  const { id } = req.params;\n  res.json({ ok: true, id });\n};`,
    () => `{"key": "${name}", "values": [1, 2.5, -3e10, null, true], "nested": {"a": "b"}}`,
    () => `for (size_t i = 0; i < n; ++i) { sum += v[i] >> 2; }  // ${name}`,
    () => `SELECT ${name}, COUNT(*) FROM t WHERE x != 'y' AND z >= 10 GROUP BY 1;`,
    () => `#include <vector>\n#define MAX(a,b) ((a)>(b)?(a):(b))\nstd::vector<int> ${name};`,
    () => `if [ -f "$HOME/.bashrc" ]; then\n  source ~/.bashrc && echo "ok" | grep -v err\nfi`,
    () => `<div class="${name}">\n  <p>Hello &amp; welcome</p>\n</div>`,
    () => `fn ${name}<'a>(s: &'a str) -> Option<&'a str> { s.split(':').next() }`,
    () => `    \t  ${name} = lambda x: [y for y in x if y % 2 == 0]\r\n`,
    () => `$$\\frac{a}{b} = \\sum_{i=0}^{n} x_i^2$$ and \`inline_code()\``,
  ];
  let s = rng.pick(templates)();
  if (rng.chance(0.3)) s += rng.pick(templates)();
  return s;
}

function whitespace(rng) {
  const parts = [];
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; ++i) {
    const k = rng.int(4);
    for (let j = 0; j <= k; ++j) parts.push(rng.pick(SPACES));
    if (rng.chance(0.7)) parts.push(rng.pick(['word', 'a', 'Hello', 'x', '123', '!', 'мир', '日本', "'s"]));
  }
  return parts.join('');
}

function digits(rng) {
  const t = rng.int(8);
  const num = (len) => { let s = String(1 + rng.int(9)); for (let i = 1; i < len; ++i) s += rng.int(10); return s; };
  switch (t) {
    case 0: return num(1 + rng.int(40));
    case 1: return `${num(1 + rng.int(6))}.${num(1 + rng.int(8))}`;
    case 2: return `Call ${num(3)}-${num(3)}-${num(4)} or pay $${num(1 + rng.int(7))},${num(3)}.99 by 2024-0${1 + rng.int(9)}-1${rng.int(10)}`;
    case 3: return `x${num(5)}y${num(2)}z ${num(12)}abc`;
    case 4: return '１２３４５ ٠١٢٣٤٥٦٧٨٩ ०१२३ ๑๒๓ ⅠⅡⅢ ½ ² ³';
    case 5: return `${num(2)}%, ${num(1)}e-${num(2)}, -${num(4)}, +${num(3)}, 0x${num(4)}FF, 1_000_000`;
    case 6: return Array.from({ length: 1 + rng.int(10) }, () => num(1 + rng.int(5))).join(rng.pick([' ', ',', '', '\n']));
    default: return `${num(4)}${rng.pick(WORDS.latin)}${num(2)}${rng.pick(WORDS.han)}${num(7)}`;
  }
}

function emoji(rng) {
  const parts = [];
  const n = 1 + rng.int(6);
  for (let i = 0; i < n; ++i) {
    parts.push(rng.pick(EMOJI));
    if (rng.chance(0.5)) parts.push(rng.pick([' ', '', ' ok ', '!', '\n', rng.pick(WORDS.latin)]));
  }
  return parts.join('');
}

function special(rng) {
  const parts = [];
  const n = 1 + rng.int(5);
  for (let i = 0; i < n; ++i) {
    parts.push(rng.chance(0.6) ? rng.pick(SPECIALS) : rng.pick(NEAR_MISSES));
    if (rng.chance(0.6)) parts.push(rng.pick(['', ' ', '  ', '\n', 'x', ' hello ', 'user', '\n\n', '日本']));
  }
  return parts.join('');
}

function control(rng) {
  let s = '';
  const n = 1 + rng.int(12);
  for (let i = 0; i < n; ++i) {
    const k = rng.int(4);
    if (k === 0) s += String.fromCharCode(rng.int(32));
    else if (k === 1) s += String.fromCharCode(0x7f + rng.int(0x21));
    else if (k === 2) s += rng.pick(['\u200d', '\u200c', '\u200e', '\u200f', '\u202e', '\u2060', '\ufffd', '\ufffc', '\u00ad']);
    else s += rng.pick(WORDS.latin);
  }
  return s;
}

function unicodeMix(rng) {
  // Assigned, long-stable blocks only: the reference and kaon may use
  // different Unicode versions for code points added recently.
  const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff],
    [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe5b], [0x1100, 0x11ff], [0x1e00, 0x1eff], [0x2000, 0x206f],
    [0x2100, 0x214f], [0x2190, 0x21ff], [0x3040, 0x30ff], [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff00, 0xffef],
    [0x1f300, 0x1f5ff], [0x1d400, 0x1d4ff]];
  let s = '';
  const n = 1 + rng.int(30);
  for (let i = 0; i < n; ++i) {
    const [a, b] = rng.pick(ranges);
    s += String.fromCodePoint(a + rng.int(b - a + 1));
  }
  return s;
}

function contractions(rng) {
  const c = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'x", "’s", "''"];
  let s = '';
  const n = 1 + rng.int(6);
  for (let i = 0; i < n; ++i) s += rng.pick(WORDS.latin) + rng.pick(c) + rng.pick([' ', '', '\n', '  ']);
  return s;
}

function long(rng, gens) {
  const target = 5000 + rng.int(5000);
  let s = '';
  while (Buffer.byteLength(s) < target) s += rng.pick(gens)(rng) + rng.pick([' ', '\n', '\n\n', '', '\t']);
  return s;
}

const FIXED = [
  '', ' ', '  ', '\n', '\t', 'a', 'A', '▁', 'a▁b', '<s>', '</s>', '<unk>', 'Hello world', ' Hello', 'Hello ',
  'x </s> y', '<0x41>', '<|begin_of_text|>Hello', '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
  'e\u0301', 'Ä', 'A\u0308', '\u1100\u1161\u11a8', 'ñ', 'n\u0303', '\u212b', '\u2126', 'q\u0307\u0323', '\u0344', 'ﬁ',
  "I'm here. You're there. It's 5 o'clock", 'don\'t   stop\t\tme\r\n\r\nnow', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '!!!!!!!!!!!!!!!!!!!!', '............', '----------', '==========', '    ', '\n\n\n\n', ' \n \n', '\u00a0\u00a0x',
];

// Returns [{category, text}] with at least `total` strings.
function generateCorpus(seed = 20240601) {
  const rng = makeRng(seed);
  const out = [];
  const add = (category, text) => out.push({ category, text });
  for (const t of FIXED) add('fixed', t);
  for (const [script, words] of Object.entries(WORDS)) {
    for (let i = 0; i < 40; ++i) add(`prose:${script}`, prose(rng, words, 1 + rng.int(25)));
  }
  const quotas = [['code', code, 220], ['whitespace', whitespace, 220], ['digits', digits, 160], ['emoji', emoji, 160],
    ['special', special, 260], ['control', control, 110], ['unicode', unicodeMix, 160], ['contractions', contractions, 100]];
  for (const [name, gen, n] of quotas) for (let i = 0; i < n; ++i) add(name, gen(rng));
  const gens = [code, whitespace, digits, emoji, special, control, contractions,
    (r) => prose(r, r.pick(Object.values(WORDS)), 5 + r.int(30))];
  for (let i = 0; i < 30; ++i) add('long', long(rng, gens));
  return out;
}

// Long inputs: SentencePiece-style tokenizers see each of these as one word
// that kaon cuts before each "▁" that follows another character (and Gemma 3
// not after ">", which one of its merges joins to "▁</"), and words of
// thousands of symbols take kaon's bucketed merge loop: the cuts and the loop
// must change nothing. Kept apart from generateCorpus so that the benchmark
// corpus (bench/tokenizer/make_corpus.js) stays as it was.
const BREAKS = [' ', '  ', '   ', '\t', '\n', '\n\n', ' \n', '\n ', '\r\n', ' \t ', '\u3000', '\u00a0'];
const FALLBACK = ['😀', '🫠', '👩‍💻', '\u0001', '\u0007', '\u001b', '\u007f', '\u0085', '\u200b', '\ufeff', '\ufffd',
  '𝔘', '龘', 'ꙮ', '\u0300', '﷽'];
const MARKERS = ['▁', '▁▁', '▁▁▁', 'a▁b', '▁x', 'x▁', '▁ ', ' ▁', '▁\n', '>▁</', '▁<'];
const HTML = ['<p>', '</p>', '<b>', '</b>', '<div class="x">', '</div>', '<br/>', '<li>', '</li>', '</span>', '<', '>', '/>'];

function sentences(rng, bytes, sep) {
  let s = '';
  while (Buffer.byteLength(s) < bytes) {
    const n = 3 + rng.int(15);
    const words = [];
    for (let i = 0; i < n; ++i) {
      let w = rng.pick(WORDS.latin);
      if (i === 0) w = w[0].toUpperCase() + w.slice(1);
      words.push(w);
    }
    s += words.join(sep ? sep(rng) : ' ') + rng.pick(['.', '!', '?', ',', ';', '…']) + rng.pick([' ', ' ', '\n', '\n\n', '  ']);
  }
  return s;
}

function randomLetters(rng, n, alphabet) {
  let s = '';
  for (let i = 0; i < n; ++i) s += alphabet[rng.int(alphabet.length)];
  return s;
}

// [{category, text}], about 2 MB in all.
function generateLongCorpus(seed = 20251202) {
  const rng = makeRng(seed);
  const out = [];
  const add = (category, text) => out.push({ category, text });
  for (let i = 0; i < 6; ++i) add('long:prose', sentences(rng, 20000 + rng.int(60000)));
  add('long:prose', sentences(rng, 300000));
  for (let i = 0; i < 6; ++i) add('long:spaces', sentences(rng, 10000 + rng.int(20000), (r) => r.pick(BREAKS)));
  for (let i = 0; i < 4; ++i) {
    add('long:edges', rng.pick(BREAKS).repeat(1 + rng.int(5)) + sentences(rng, 5000 + rng.int(10000)) + rng.pick(BREAKS).repeat(1 + rng.int(5)));
  }
  const sprinkle = (list, p) => (r) => (r.chance(p) ? r.pick(list) : r.pick([' ', ' ', '  ', '\n']));
  for (let i = 0; i < 5; ++i) add('long:marker', sentences(rng, 10000 + rng.int(20000), sprinkle(MARKERS, 0.3)));
  for (let i = 0; i < 5; ++i) add('long:fallback', sentences(rng, 10000 + rng.int(20000), sprinkle(FALLBACK, 0.3)));
  for (let i = 0; i < 5; ++i) {
    add('long:fallback', sentences(rng, 10000, (r) => (r.chance(0.5) ? r.pick(FALLBACK) : '') + ' ' + (r.chance(0.3) ? r.pick(FALLBACK) : '')));
  }
  for (let i = 0; i < 4; ++i) add('long:html', sentences(rng, 10000 + rng.int(10000), sprinkle(HTML.map((h) => ` ${h} `).concat(HTML), 0.4)));
  // Very long words, alone and between sentences.
  const longWords = [
    () => 'a'.repeat(5000 + rng.int(60000)),
    () => ' '.repeat(5000 + rng.int(30000)),
    () => '▁'.repeat(5000 + rng.int(20000)),
    () => '7'.repeat(5000 + rng.int(20000)),
    () => '一'.repeat(5000 + rng.int(20000)),
    () => '😀'.repeat(2000 + rng.int(5000)),
    () => 'ab'.repeat(3000 + rng.int(20000)),
    () => randomLetters(rng, 5000 + rng.int(40000), 'abcde'),
    () => randomLetters(rng, 5000 + rng.int(40000), 'etaoinshrdlu'),
    () => randomLetters(rng, 5000 + rng.int(20000), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'),
    () => sentences(rng, 5000 + rng.int(30000), () => ''),
    () => sentences(rng, 5000 + rng.int(20000), () => '▁'),
    () => randomLetters(rng, 3000 + rng.int(10000), ['日', '本', '語', '中', '文', '的', '是']),
  ];
  for (const make of longWords) {
    add('long:word', make());
    add('long:word', sentences(rng, 2000) + make() + ' ' + sentences(rng, 2000));
  }
  add('long:word', 'a'.repeat(1 << 18));
  add('long:word', ' '.repeat(1 << 17) + 'x' + ' '.repeat(1 << 17));
  return out;
}

module.exports = { generateCorpus, generateLongCorpus, mulberry32 };
