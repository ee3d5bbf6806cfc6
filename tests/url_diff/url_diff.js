// url_diff.js: differential test of url.c against Node's WHATWG URL parser.
//
// Generates about 20,000 (base, href) pairs: hand-written tricky ones and random combinations
// of schemes, slashes, user info, hosts, ports, segments, dots, escapes, queries, fragments,
// white space and non-ASCII text. Resolves each with url_resolve_tool (url.c, keeping
// fragments) and with `new URL(href, base)`, maps Node's answer through expected(), which holds
// areq's deliberate differences, and fails listing every pair where the two disagree.
//
// Usage: node url_diff.js path/to/url_resolve_tool [count]
'use strict';

const { spawnSync } = require('child_process');
const { domainToUnicode } = require('url');

const tool = process.argv[2];
const total = Number(process.argv[3] || 20000);
if (!tool) {
  console.error('usage: node url_diff.js url_resolve_tool [count]');
  process.exit(2);
}

// A fixed seed: a failure must reproduce.
let seed = 0x5eed1234;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const chance = (p) => random() < p;
const repeat = (n, f) => Array.from({ length: n }, f).join('');

const bases = [
  'http://example.com/a/b/c?q=1',
  'https://secure.example:8443/dir/',
  'http://[::1]:8080/a/',
  'http://u:p@h.example/x',
  'http://h.example',
  'https://xn--bcher-kva.example/a/b/',
  'http://127.0.0.1/a/b/c/d/e',
  'http://h.example/a%20b/c%2e/?x=%7e',
];

const hand = [
  // relative forms
  'd', './d', 'd/', '../d', '../../../../d', '/d', '/d/./e/../f', '.', '..', './', '../',
  '?y=2', '?', 'd?y=2', '', ' ', '#', '#x', 'd#x', '?a#b', '//', '///', '////x', '\\\\x\\y',
  '/\\x/y', '\\/x/y', '\\d\\e', 'd\\e\\..\\f', './/x', '..//x', 'd/.//x', 'a/./b/.', 'a/../..',
  '%2e%2e/d', '%2E%2e/%2e%2E/d', 'e/%2e/f', '.%2e/d', '%2e./d', 'd/%2e%2e', '%2e%2e%2e/d',
  '.../d', '..../d', 'd/..%2f', '%2e', '%2e/', 'a/%2e%2', 'a/.%2', 'a/%2e%2e%2e',
  '%7e%2fx%3a', 'd?a=%2f%3d', 'a b', 'd?a b', 'd"q"', 'd<x>', 'd?<x>', 'd`{}', 'd?`{}',
  'été', 'd?é', '%', '%zz/%4', 'd?%', ' d ', '\n\t d\r\n', 'd\te', 'd\ne?x\r=1', '\x01\x02d\x1f',
  'd\x01e', 'd\x7fe', 'd?a\\b', 'd#a b', 'd#%7e', 'd#x#y', 'd#{}`', 'd#"<>', 'd?"<>',
  "d?q='", "d?q=%27", "d'e", 'd|e', 'd^e', 'd[e]', 'd@e', 'd:e', './a:b', '1a:b', 'a:b',
  'd;p?q', 'http:', 'http:d', 'https:d', 'http:/d', 'http:\\\\other\\p', 'https:/d',
  'https:\\d', 'HTTP:d', 'http:?x', 'http:#x', 'http:///x', 'https:///x', 'http:/\\x/y',
  'mailto:a@b.example', 'javascript:void(0)', 'java\tscript:x', 'ftp://x.example/f',
  'file:///etc/passwd', 'data:text/plain,hi', 'ws://x/', 'blob:http://x/y', 'tel:+1555',
  // absolute URLs and their authorities
  'http://example.com', 'http://example.com?x', 'http://example.com#f', 'HTTP://WWW.EXAMPLE.COM/X',
  'http://example.com:80/p', 'https://example.com:443/p', 'http://example.com:443/p',
  'http://example.com:/p', 'http://example.com:0080/p', 'http://x:65535/', 'http://x:65536/',
  'http://x:99999999999999999999/', 'http://x:-1/', 'http://x:8a/', 'http://x: 80/',
  'http://x:0/', 'http://:80/', 'http://user:pass@host.example/p', 'http://User@Host.Example/',
  'http://@host.example/', 'http://u:@host.example/', 'http://:p@host.example/',
  'http://:@host.example/', 'http://a%20b:c%2f@host/', 'http://a@b@host.example/',
  'http://u:p:q@host.example/', 'http://[x]@host.example/', 'http://u%3a:p@host.example/',
  'http://u@/', 'http://u@', 'http://u@:80/', 'http://a b@h/', 'http://é@h/', 'http://a\\b@h/',
  'http://a"b@h/', 'http://', 'http:///', 'http://?x', 'http://#x', 'http://./', 'http://../',
  'http://example.com./', 'http://a..b/', 'http://EX%41MPLE.com/', 'http://a%zz/',
  'http://a%00b/', 'http://a%2fb/', 'http://a%2Eb/', 'http://a b.com/', 'http://a<b/',
  'http://a^b/', 'http://a|b/', 'http://a"b/', 'http://a`b/', 'http://a{b/', 'http://a}b/',
  'http://a_b/', 'http://a*b/', "http://a'b/", 'http://a(b)/', 'http://a!b$c&d/', 'http://a;b=c/',
  'http://a,b+c~d/', 'http://a]b/', 'http://\x01a/', 'http://a\x7f/',
  // IPv4
  'http://0x7f.1/', 'http://127.0.0.1:8080/', 'http://1.2.3.4.5/', 'http://1.2.3/',
  'http://1.2/', 'http://1/', 'http://4294967295/', 'http://4294967296/', 'http://0xffffffff/',
  'http://0x100000000/', 'http://09/', 'http://08.1/', 'http://0.0.0.0/', 'http://00/',
  'http://0x/', 'http://0X/', 'http://0xg/', 'http://1.0x/', 'http://1.2.3.4./',
  'http://1.2.3.4../', 'http://.1/', 'http://a.1/', 'http://1.a/', 'http://1.a.2/',
  'http://256.0.0.1/', 'http://1.256.0.0/', 'http://1.0x1000000/', 'http://1.0xffffff/',
  'http://017700000001/', 'http://0x7f000001/', 'http://1.2.0x3.04/', 'http://0300.0250.0.1/',
  'http://99999999999999999999/', 'http://1.2.3.09/', 'http://%31%32%37.0.0.1/',
  'http://１２７.0.0.1/', 'http://0x7f.0.0.1./',
  // IPv6
  'http://[::1]/', 'http://[::1]:8080/p', 'http://[::1]:80/p', 'http://[2001:DB8::A]/',
  'http://[0:0:0:0:0:0:0:1]/', 'http://[0:0::1]/', 'http://[1:0:0:0:0:0:0:0]/',
  'http://[1:0:0:2:0:0:0:3]/', 'http://[1:0:0:2:0:0:3:4]/', 'http://[0:1:0:1:0:1:0:1]/',
  'http://[::]/', 'http://[::0:0]/', 'http://[::ffff:1.2.3.4]/', 'http://[::1.2.3.4]/',
  'http://[1::02.3.4.5]/', 'http://[1::1.2.3]/', 'http://[1::1.2.3.4.5]/', 'http://[1::256.1.1.1]/',
  'http://[1:2:3:4:5:6:1.2.3.4]/', 'http://[1:2:3:4:5:6:7:1.2.3.4]/', 'http://[::1%25eth0]/',
  'http://[bad', 'http://[1:2:3]/', 'http://[1:2:3:4:5:6:7:8:9]/', 'http://[1::2::3]/',
  'http://[:1]/', 'http://[1:]/', 'http://[12345::]/', 'http://[01234::]/', 'http://[::1]x/',
  'http://[::1]:/', 'http://x[::1]/', 'http://[]/', 'http://[', 'http://[::1.2.3.4x]/',
  'http://[1:2:3:4:5:6:7::]/', 'http://[::1:2:3:4:5:6:7]/', 'http://[ffff::FFFF]/',
  // international names
  'http://Bücher.example/', 'http://ÉXAMPLE.com', 'http://%C3%A9.example/', 'http://a%C3%A9/',
  'http://xn--bcher-kva.example/', 'http://XN--BCHER-KVA.example/', 'http://xn--a.com/',
  'http://xn--.com/', 'http://a.xn--a/', 'http://faß.de/', 'http://例え.テスト/', 'http://мир.рф/',
  'http://ⅷ.com/', 'http://exam\u00adple.com/', 'http://\ufeffexample.com/', 'http://ü.com./',
  'http://a_b.ü/', 'http://ıstanbul.tr/', 'http://straße.de/', 'http://e\u0301.com/',
  'http://ü.com:8080/p', 'http://user@ü.com/', 'http://%c3%bc.com/', 'http://%c3.com/',
  'http://a\u3002b.ü/', 'http://a\uff0eb/', 'http://a％b.ü/', 'http://\u2488.com/',
  'http://日本語.jp/パス?クエリ#フラグ', 'http://xn--tda/', 'http://☃.net/', 'http://ab--ü.com/',
  'http://-a.ü/', 'http://ü-.com/', 'http://١.com/', 'http://a.١/', 'http://ß/', 'http://ς.gr/',
  'http://\u200d.com/', 'http://a\u200db.com/', 'http://\u00ad/',
];

// Pieces for the random pairs.
const pieces = {
  scheme: ['', '', '', 'http:', 'https:', 'HTTP:', 'hTtPs:', 'ftp:', 'mailto:', 'a:', '1a:',
    'data:', 'ws:', 'file:', 'javascript:', 'http+x:'],
  slashes: ['', '/', '//', '//', '//', '///', '\\', '\\\\', '/\\', '\\/', '////'],
  userinfo: ['', '', '', '', 'u@', 'u:p@', ':@', 'u:@', ':p@', 'a@b@', 'u%41:p@', 'ü@', 'a b@',
    '[x]@', '@', 'a:b:c@', 'u;p=x@', 'a%zz@'],
  host: ['example.com', 'EXAMPLE.COM', 'ex%41mple.com', 'Bücher.example', '%C3%A9.example',
    'xn--bcher-kva.example', 'XN--BCHER-KVA.example', 'xn--a.com', '0x7f.1', '127.0.0.1',
    '1.2.3.4.5', '1.2.3', '4294967295', '4294967296', '0x100000000', '09.1', '1.2.3.4.',
    'a.1', '1.a', '[::1]', '[0:0::1]', '[1:0:0:0:0:0:0:0]', '[::ffff:1.2.3.4]', '[1::02.3.4.5]',
    '[::1%25eth0]', '[bad', 'a b', 'a<b', 'a|b', 'a^b', 'a%zz', 'a%00b', 'a%2fb', 'ex_ample.com',
    'a*b', 'a"b', 'a{b', '', 'ÉXAMPLE.com', 'faß.de', '１２７.0.0.1', '例え.テスト', 'мир.рф',
    'ⅷ.com', 'exam\u00adple.com', 'a..b', '.', '..', '-a.com', '0x', '0xg', '1.0x', '0.0.0.0',
    '255.255.255.255', '256.0.0.1', '017700000001', '0x7f000001', '1.2.0x3.04', 'h',
    'www.example.org', 'A.B.C', '[2001:db8:0:0:1:0:0:1]', '[::]', '[1::]'],
  port: ['', '', '', '', ':', ':80', ':443', ':0080', ':8080', ':65535', ':65536',
    ':99999999999', ':8a', ':-1', ':0', ':00443'],
  segment: ['a', 'b', 'c', 'index.html', '.', '..', '.', '..', '%2e', '%2E%2e', '.%2e', '%2e.',
    '...', 'a b', 'é', '%7e', '%zz', '%', 'a"b', '<x>', '`{}', ';p', 'a:b', '~', '%2f', '%00',
    'été', '', '', '日本', 'a\tb', 'x\ny', '\x01', '\x7f', "'", '|', '^', '[x]', '@', '%2e%2',
    'a%2', '%C3%A9', '%c3%a9', 'A%3aB'],
  separator: ['/', '/', '/', '\\', '//'],
  query: ['', '', '', '?', '?a=1', '?a b', '?%7e', "?`{}'", '?é', '?a\\b', '??', '?a=%2F%2f',
    '?"<>', '?a=1&b=2', '?%zz', '?\x01\x7f', '?日本', "?%27'"],
  fragment: ['', '', '', '#', '#x', '#a b', '#%7e', '#{}`', '#é', '#x#y', '#"<>', "#'",
    '#\x01', '#?x'],
  space: ['', '', '', '', '', ' ', '  ', '\t', '\n', '\r\n', '\x00', '\x1f', '\x0c'],
  noise: ['.', '..', '/', '\\', '?', '#', '%', '%2e', 'a', 'b', ':', '@', '[', ']', ' ', 'é',
    '%41', 'x', '1', '0x', ';', '=', '&', "'", '"', '\t'],
};

function path() {
  const n = Math.floor(random() * 5);
  let out = '';
  for (let i = 0; i < n; i++) out += (i > 0 ? pick(pieces.separator) : '') + pick(pieces.segment);
  return out;
}

function authority() {
  return pick(pieces.userinfo) + pick(pieces.host) + pick(pieces.port);
}

function tail() {
  return pick(pieces.query) + pick(pieces.fragment);
}

// One random href: a shape, then white space and stray tabs and newlines around and in it.
function randomHref() {
  let href;
  switch (Math.floor(random() * 8)) {
    case 0:
    case 1:
      href = pick(pieces.scheme) + pick(pieces.slashes) + authority() + (chance(0.8) ? '/' : '') + path() + tail();
      break;
    case 2:
      href = 'http' + (chance(0.5) ? 's' : '') + '://' + authority() + '/' + path() + tail();
      break;
    case 3:
      href = '//' + authority() + '/' + path() + tail();
      break;
    case 4:
      href = '/' + path() + tail();
      break;
    case 5:
      href = path() + tail();
      break;
    case 6:
      href = pick(pieces.scheme) + path() + tail();
      break;
    default:
      href = repeat(1 + Math.floor(random() * 8), () => pick(pieces.noise));
      break;
  }
  href = pick(pieces.space) + href + pick(pieces.space);
  if (chance(0.05)) {
    const at = Math.floor(random() * (href.length + 1));
    href = href.slice(0, at) + pick(['\t', '\n', '\r']) + href.slice(at);
  }
  return href;
}

// What the tool reads: backslash, tab, CR, LF and other controls spelled out.
function escapeField(s) {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '\\') out += '\\\\';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out;
}

// Node's answer with areq's deliberate differences applied (see the top of src/web/url.c).
// Returns 'FILTERED', 'ERROR' or 'OK\t' + the URL areq should print.
function expected(base, href) {
  // WHATWG's clean-up, to see the scheme as the parser does.
  const clean = href.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '').replace(/[\t\n\r]/g, '');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(clean);
  // 1. Other schemes are filtered without being parsed (URL_ALL_SCHEMES is not given).
  if (scheme && !/^https?$/i.test(scheme[1])) return 'FILTERED';
  let url;
  try {
    url = new URL(href, base);
  } catch (e) {
    // 2. A name that non-transitional processing refuses gets another try with transitional
    //    processing (as curl does), which deletes the joiners U+200C and U+200D where
    //    non-transitional processing refuses them in that place.
    if (!/[\u200c\u200d]/.test(clean)) return 'ERROR';
    return expected(base, href.replace(/[\u200c\u200d]/g, ''));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'FILTERED';
  // 3. A host holding '"', '`', '{' or '}' is refused: url.h promises never to print them
  //    raw, and a host cannot be escaped.
  if (/["`{}]/.test(url.hostname)) return 'ERROR';
  // 4. libidn2 applies IDNA2008's hyphen and label-length rules to names it converts, which
  //    UTS #46 as WHATWG uses it does not: such names are refused.
  const labels = url.hostname.split('.');
  if (labels.some((l) => /^xn--/.test(l))) {
    for (const label of labels) {
      const u = /^xn--/.test(label) ? domainToUnicode(label) : label;
      if (label.length > 63 || /^-|-$/.test(u) || u.slice(2, 4) === '--') return 'ERROR';
    }
  }
  let text = url.href;
  const hash = text.indexOf('#');
  const queryAt = text.indexOf('?');
  const end = hash >= 0 ? hash : text.length;
  const query = queryAt >= 0 && queryAt < end ? queryAt : end;
  let head = text.slice(0, query);
  let q = text.slice(query, end);
  let frag = text.slice(end);
  // 5. One escape set for every component: '`', '{', '}' escaped in the query and the
  //    fragment as in the path, and "'" left alone in the query (compare() reads both
  //    spellings of it the same, since Node's "%27" may also have been typed as such).
  q = q.replace(/[`{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  frag = frag.replace(/[`{}]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  // 6. Escapes in upper-case hex.
  const upper = (s) => s.replace(/%[0-9a-fA-F]{2}/g, (e) => e.toUpperCase());
  return 'OK\t' + upper(head) + upper(q) + upper(frag);
}

// Compares our line with the expected one, reading "'" and "%27" in a query as the same.
function same(ours, want) {
  if (ours === want) return true;
  if (!ours.startsWith('OK\t') || !want.startsWith('OK\t')) return false;
  const quote = (s) => {
    const hash = s.indexOf('#');
    const end = hash >= 0 ? hash : s.length;
    const q = s.indexOf('?');
    if (q < 0 || q > end) return s;
    return s.slice(0, q) + s.slice(q, end).replace(/%27/g, "'") + s.slice(end);
  };
  return quote(ours) === quote(want);
}

const pairs = [];
for (const base of bases) for (const href of hand) pairs.push([base, href]);
while (pairs.length < total) pairs.push([pick(bases), randomHref()]);

const input = pairs.map(([b, h]) => escapeField(b) + '\t' + escapeField(h) + '\n').join('');
const run = spawnSync(tool, ['-k'], { input, encoding: 'utf8', maxBuffer: 256 << 20 });
if (run.error || run.status !== 0) {
  console.error('url_resolve_tool failed:', run.error || run.stderr);
  process.exit(1);
}
const lines = run.stdout.split('\n');
let mismatches = 0;
const kinds = {};
for (let i = 0; i < pairs.length; i++) {
  const [base, href] = pairs[i];
  const ours = lines[i];
  const kind = ours.split('\t')[0];
  kinds[kind] = (kinds[kind] || 0) + 1;
  const want = expected(base, href);
  if (!same(ours, want)) {
    mismatches++;
    if (mismatches <= 200)
      console.log(`MISMATCH base=${JSON.stringify(base)} href=${JSON.stringify(href)}\n  areq: ${JSON.stringify(ours)}\n  want: ${JSON.stringify(want)}`);
  }
}
console.log(`${pairs.length} pairs (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}), ${mismatches} mismatches`);
process.exit(mismatches === 0 ? 0 : 1);
