// A strict reader for the block-style YAML that kubectl (`config view --raw`, `config set-*`),
// kubeadm, kind and Multus's installer write into kubeconfigs. The thin CNI executable reads a
// kubeconfig on every ADD, and the `yaml` package costs milliseconds to load and to parse one with
// certificate data; this reads that one shape in microseconds and answers `undefined` for anything
// outside it, so the caller falls back to `yaml`.
//
// Contract: whenever a value is returned it deep-equals what yaml 2.x `parse(text)` (default
// options: YAML 1.2, core schema, unique keys) returns. Every construct this code is not sure of
// makes it give up rather than guess. It is linear in the input and never throws.

/** What the subset can produce: YAML's JSON-like core, minus numbers (always bailed on). */
type Value = string | boolean | null | Value[] | { [key: string]: Value };

const SPACE = 0x20;
const HASH = 0x23;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const COLON = 0x3a;
const MINUS = 0x2d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

// Nesting is bounded so that a hostile file cannot exhaust the stack (which would throw).
const MAX_DEPTH = 64;
// yaml rejects an implicit key whose ':' is more than 1024 characters after its start.
const MAX_KEY_LENGTH = 1000;

// Characters outside the subset anywhere in the file: tabs (indentation or separation, both have
// rules of their own), \r, other C0/C1 controls, and every non-ASCII space or line break (NEL, LS,
// PS, NBSP, BOM...), which YAML or JavaScript's trimming would treat differently from text.
const OUTSIDE_SUBSET =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
const NOT_PRINTABLE_ASCII = /[^\n\x20-\x7e]/;

// Plain scalars the YAML 1.2 core schema reads as numbers: exactly its patterns as yaml 2 implements
// them (the first here is its int, float and exp together, then octal, hex, inf and nan). `0O20` or
// `0X1F` is a string to yaml and so here: short base64 values look like that. Anchored, no nested
// quantifiers: linear.
const NUMBER_LIKE = [
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/,
  /^0o[0-7]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
];

// A plain scalar may not start with these: they begin other YAML constructs (`-`, handled apart,
// may start one when a non-space follows).
const INDICATORS = new Set([
  '-',
  '?',
  ':',
  ',',
  '[',
  ']',
  '{',
  '}',
  '#',
  '&',
  '*',
  '!',
  '|',
  '>',
  "'",
  '"',
  '%',
  '@',
  '`',
]);

// Double-quoted escapes with a fixed meaning in YAML 1.2 (`\x`, `\u`, `\U` are decoded apart).
const ESCAPES = new Map<string, string>([
  ['0', '\0'],
  ['a', '\x07'],
  ['b', '\b'],
  ['t', '\t'],
  ['n', '\n'],
  ['v', '\v'],
  ['f', '\f'],
  ['r', '\r'],
  ['e', '\x1b'],
  [' ', ' '],
  ['"', '"'],
  ['/', '/'],
  ['\\', '\\'],
  ['N', '\u0085'],
  ['_', '\u00a0'],
  ['L', '\u2028'],
  ['P', '\u2029'],
]);
const HEX_WIDTH = new Map<string, number>([
  ['x', 2],
  ['u', 4],
  ['U', 8],
]);
const HEX = /^[0-9a-fA-F]+$/;

/**
 * The document in `text` when it is written in the simple block style of kubeconfigs, else
 * `undefined` (the caller then parses it with `yaml`). A returned value deep-equals yaml's `parse`.
 */
export function parseKubeconfigText(text: string): unknown {
  try {
    // Most kubeconfigs are printable ASCII, which the cheaper first scan proves on its own.
    if (NOT_PRINTABLE_ASCII.test(text) && OUTSIDE_SUBSET.test(text)) return undefined;
    return new BlockReader(text.split('\n')).document();
  } catch {
    // Not expected; a bug here must only cost the fast path, never the CNI call.
    return undefined;
  }
}

interface Quoted {
  readonly value: string;
  /** Index just past the closing quote. */
  readonly end: number;
}

interface Key {
  readonly name: string;
  /** Index just past the ':' (a space or the end of the line is there). */
  readonly end: number;
}

// Reads block collections line by line. Each method returns undefined to give up; the cursor `i`
// is the next unread line.
class BlockReader {
  private i = 0;
  private depth = 0;

  constructor(private readonly lines: readonly string[]) {}

  document(): Value | undefined {
    // A root that is not at column 0 is valid YAML but never written by the tools: not worth the risk.
    if (this.next() !== 0) return undefined;
    const root = this.block(0);
    return root !== undefined && this.next() === -1 ? root : undefined;
  }

  private line(): string {
    return this.lines[this.i] ?? '';
  }

  /** Skips blank and comment lines; the indentation of the next content line, or -1 at the end. */
  private next(): number {
    for (; this.i < this.lines.length; this.i++) {
      const line = this.line();
      const n = skipSpaces(line, 0);
      if (n < line.length && line.charCodeAt(n) !== HASH) return n;
    }
    return -1;
  }

  /** A collection whose first line starts at column `col` of the current line. */
  private block(col: number): Value | undefined {
    return isEntry(this.line(), col) ? this.sequence(col) : this.mapping(col);
  }

  private mapping(col: number): Value | undefined {
    if (++this.depth > MAX_DEPTH) return undefined;
    const map: Record<string, Value> = {};
    for (;;) {
      const line = this.line();
      const key = readKey(line, col);
      // yaml rejects duplicate keys; `__proto__` would need defineProperty to match yaml's result.
      if (key === undefined || key.name === '__proto__' || Object.hasOwn(map, key.name)) return undefined;
      const start = skipSpaces(line, key.end);
      this.i++;
      // `key:` alone: the value is on the next lines; a sequence may sit at the key's own column.
      const value = isEmpty(line, start) ? this.nested(col, true) : inlineScalar(line, start);
      if (value === undefined) return undefined;
      map[key.name] = value;
      const n = this.next();
      if (n < col) break;
      // Deeper than the keys: a continued scalar or bad indentation; either way not ours.
      if (n > col) return undefined;
    }
    this.depth--;
    return map;
  }

  private sequence(col: number): Value | undefined {
    if (++this.depth > MAX_DEPTH) return undefined;
    const list: Value[] = [];
    for (;;) {
      const line = this.line();
      const start = skipSpaces(line, col + 1);
      let item: Value | undefined;
      if (isEmpty(line, start)) {
        this.i++;
        item = this.nested(col, false);
      } else if (isEntry(line, start)) {
        item = this.sequence(start); // `- - x`: a sequence in a sequence, on the same line
      } else if (readKey(line, start) !== undefined) {
        item = this.mapping(start); // `- key: v`: further keys align with the first
      } else {
        this.i++;
        item = inlineScalar(line, start);
      }
      if (item === undefined) return undefined;
      list.push(item);
      const n = this.next();
      if (n < col || (n === col && !isEntry(this.line(), col))) break;
      if (n > col) return undefined;
    }
    this.depth--;
    return list;
  }

  /** The value after a `key:` or `-` with nothing else on its line: a deeper block, or null. */
  private nested(col: number, sameColumnSequence: boolean): Value | undefined {
    const n = this.next();
    if (n > col) return this.block(n);
    if (n === col && sameColumnSequence && isEntry(this.line(), col)) return this.sequence(col);
    return null;
  }
}

function skipSpaces(line: string, from: number): number {
  let i = from;
  while (line.charCodeAt(i) === SPACE) i++;
  return i;
}

/** Nothing but an optional comment from `start` on (`start` is past at least one space or ':'/'-'). */
function isEmpty(line: string, start: number): boolean {
  return start === line.length || line.charCodeAt(start) === HASH;
}

/** A block sequence entry starts at `col`: '-' followed by a space or the end of the line. */
function isEntry(line: string, col: number): boolean {
  return line.charCodeAt(col) === MINUS && (col + 1 === line.length || line.charCodeAt(col + 1) === SPACE);
}

function isKeyChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === MINUS ||
    c === 0x5f || // _
    c === 0x2e || // .
    c === 0x2f // /
  );
}

/** `key:` at `start`, followed by a space or the end of the line; undefined when it is not one. */
function readKey(line: string, start: number): Key | undefined {
  const c = line.charCodeAt(start);
  let name: string;
  let end: number;
  if (c === DQUOTE || c === SQUOTE) {
    const quoted = c === DQUOTE ? doubleQuoted(line, start) : singleQuoted(line, start);
    if (quoted === undefined) return undefined;
    ({ value: name, end } = quoted);
  } else {
    // A leading '-' could be a sequence entry or a document marker: not a key here.
    if (c === MINUS) return undefined;
    end = start;
    while (isKeyChar(line.charCodeAt(end))) end++;
    if (end === start) return undefined;
    name = line.slice(start, end);
    // Keys are resolved like values: `null:` is '' and `1:` is '1' to yaml. Only plain strings pass.
    if (typeof resolvePlain(name) !== 'string') return undefined;
  }
  if (end - start > MAX_KEY_LENGTH || line.charCodeAt(end) !== COLON) return undefined;
  if (end + 1 < line.length && line.charCodeAt(end + 1) !== SPACE) return undefined;
  return { name, end: end + 1 };
}

/** A value that starts at `start` and ends on this line (an optional ` #` comment after it). */
function inlineScalar(line: string, start: number): Value | undefined {
  const c = line.charCodeAt(start);
  if (c === DQUOTE || c === SQUOTE) {
    const quoted = c === DQUOTE ? doubleQuoted(line, start) : singleQuoted(line, start);
    return quoted !== undefined && onlyCommentAfter(line, quoted.end) ? quoted.value : undefined;
  }
  // The only flow collections in the subset: `{}` and `[]` (`preferences: {}`).
  if (c === LBRACE || c === LBRACKET) {
    const close = c === LBRACE ? RBRACE : RBRACKET;
    if (line.charCodeAt(start + 1) !== close || !onlyCommentAfter(line, start + 2)) return undefined;
    return c === LBRACE ? {} : [];
  }
  return plainScalar(line, start);
}

function plainScalar(line: string, start: number): Value | undefined {
  const first = line.charAt(start);
  // `-x` is a plain scalar (kubectl writes `- --cluster-name`); `- x` here would be an error.
  if (
    INDICATORS.has(first) &&
    !(first === '-' && start + 1 < line.length && line.charCodeAt(start + 1) !== SPACE)
  ) {
    return undefined;
  }
  let text = line.slice(start);
  // A '#' after a space starts a comment; the text before it, trailing spaces trimmed, is the value.
  const hash = text.indexOf(' #');
  if (hash !== -1) text = text.slice(0, hash);
  text = text.trimEnd();
  // ': ' or a final ':' would make it a mapping key, which yaml rejects in this position.
  if (text.includes(': ') || text.endsWith(':')) return undefined;
  return resolvePlain(text);
}

/** The core schema's reading of a plain scalar; undefined for numbers (never a kubeconfig value). */
function resolvePlain(text: string): Value | undefined {
  switch (text) {
    case '':
    case '~':
    case 'null':
    case 'Null':
    case 'NULL':
      return null;
    case 'true':
    case 'True':
    case 'TRUE':
      return true;
    case 'false':
    case 'False':
    case 'FALSE':
      return false;
  }
  const c = text.charCodeAt(0);
  const numeric = (c >= 0x30 && c <= 0x39) || c === MINUS || c === 0x2b || c === 0x2e; // digit + - .
  return numeric && NUMBER_LIKE.some((re) => re.test(text)) ? undefined : text;
}

/** A space (or the end of the line) and an optional comment are all that follow `end`. */
function onlyCommentAfter(line: string, end: number): boolean {
  const i = skipSpaces(line, end);
  return i === line.length || (i > end && line.charCodeAt(i) === HASH);
}

/** `'...'` closed on this line, `''` standing for one quote. */
function singleQuoted(line: string, start: number): Quoted | undefined {
  let value = '';
  let from = start + 1;
  for (;;) {
    const quote = line.indexOf("'", from);
    if (quote === -1) return undefined; // continues on the next line: folding rules, not ours
    if (line.charCodeAt(quote + 1) !== SQUOTE)
      return { value: value + line.slice(from, quote), end: quote + 1 };
    value += line.slice(from, quote + 1);
    from = quote + 2;
  }
}

/** `"..."` closed on this line, with the escapes above. */
function doubleQuoted(line: string, start: number): Quoted | undefined {
  let value = '';
  let from = start + 1;
  // Both searches only move forward, so a line full of escapes stays linear.
  let quote = line.indexOf('"', from);
  let slash = line.indexOf('\\', from);
  for (;;) {
    if (quote === -1) return undefined;
    if (slash === -1 || slash > quote) return { value: value + line.slice(from, quote), end: quote + 1 };
    value += line.slice(from, slash);
    const code = line.charAt(slash + 1);
    const width = HEX_WIDTH.get(code);
    if (width !== undefined) {
      const hex = line.slice(slash + 2, slash + 2 + width);
      if (hex.length !== width || !HEX.test(hex)) return undefined;
      const point = parseInt(hex, 16);
      if (point > 0x10ffff) return undefined;
      value += String.fromCodePoint(point);
      from = slash + 2 + width;
    } else {
      // An unknown escape is an error to yaml; '\' at the end of the line continues the scalar.
      const escaped = ESCAPES.get(code);
      if (escaped === undefined) return undefined;
      value += escaped;
      from = slash + 2;
    }
    if (from > quote) quote = line.indexOf('"', from);
    slash = line.indexOf('\\', from);
  }
}
