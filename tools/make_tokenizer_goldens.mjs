#!/usr/bin/env node
// Writes the tokenizer goldens with the npm package `tokenizers` (Hugging Face's Node binding of
// the same Rust library the Python `tokenizers` wraps): the twin of tools/make_tokenizer_goldens.py
// for machines that have npm but not the Python package. It writes the same files: same texts, same
// calls, same fields, and the same bytes as Python's json.dumps(..., ensure_ascii=True) layout.
//
//   scripts/fetch_test_data.sh && scripts/fetch_golden_tools.sh
//   node tools/make_tokenizer_goldens.mjs [--testdata .testdata/tokenizers]
//       [--texts tools/tokenizer_texts.json] [--out tests/engine/tokenizer_goldens]
//       [--node-modules .testdata/node/node_modules]
//
// For each .testdata/tokenizers/<name>/ it writes tests/engine/tokenizer_goldens/<name>.json:
//   {"tokenizer": name, "tokenizers_version": ..., "files": {file: sha256},
//    "text": [...], "ids_special": [...], "ids_plain": [...],
//    "decoded": [...], "decoded_skip_special": [...]}
// where ids_special / ids_plain are encode(text, addSpecialTokens true / false) ids, decoded is
// decode(ids_special, false) and decoded_skip_special is decode(ids_special, true).
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const testdataRoot = process.env.MLXN_TESTDATA_DIR ?? path.join(root, ".testdata");

function die(message) {
  console.error(`make_tokenizer_goldens: ${message}`);
  process.exit(1);
}

const { values: args } = parseArgs({
  options: {
    testdata: { type: "string", default: path.join(testdataRoot, "tokenizers") },
    texts: { type: "string", default: path.join(root, "tools", "tokenizer_texts.json") },
    out: { type: "string", default: path.join(root, "tests", "engine", "tokenizer_goldens") },
    "node-modules": { type: "string", default: path.join(testdataRoot, "node", "node_modules") },
  },
});

// The package comes from the pinned install of scripts/fetch_golden_tools.sh, not from whatever a
// global or parent node_modules holds.
const packageJson = path.join(args["node-modules"], "tokenizers", "package.json");
if (!fs.existsSync(packageJson)) {
  die(`${packageJson} is missing; run scripts/fetch_golden_tools.sh`);
}
const require = createRequire(packageJson);
const tk = require(path.dirname(packageJson));
const tokenizersVersion = JSON.parse(fs.readFileSync(packageJson, "utf8")).version;

// ---- Python json.dumps(value, ensure_ascii=True, sort_keys=True), byte for byte ----

const shortEscapes = {
  0x22: '\\"',
  0x5c: "\\\\",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
};

function dumpString(s) {
  let out = '"';
  // UTF-16 code units: a character outside the BMP comes out as its surrogate pair, as in Python.
  for (let i = 0; i < s.length; ++i) {
    const c = s.charCodeAt(i);
    if (shortEscapes[c] !== undefined) {
      out += shortEscapes[c];
    } else if (c >= 0x20 && c <= 0x7e) {
      out += s[i];
    } else {
      out += "\\u" + c.toString(16).padStart(4, "0");  // lowercase hex, as Python writes
    }
  }
  return out + '"';
}

function pyDumps(value) {
  if (typeof value === "string") return dumpString(value);
  if (typeof value === "number") {
    if (!Number.isInteger(value)) die(`unexpected non-integer ${value}`);
    return String(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value === null) return "null";
  if (Array.isArray(value)) return "[" + value.map(pyDumps).join(", ") + "]";
  const keys = Object.keys(value).sort(byCodePoint);
  return "{" + keys.map((k) => dumpString(k) + ": " + pyDumps(value[k])).join(", ") + "}";
}

// Python sorts str by code point; JavaScript's default sort compares UTF-16 code units.
function byCodePoint(a, b) {
  const x = Array.from(a, (ch) => ch.codePointAt(0));
  const y = Array.from(b, (ch) => ch.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); ++i) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

// The layout of write_golden in make_tokenizer_goldens.py: one list element per line.
function writeGolden(file, record) {
  const keys = Object.keys(record);
  let out = "{\n";
  keys.forEach((key, k) => {
    const value = record[key];
    out += "  " + pyDumps(key) + ": ";
    if (Array.isArray(value)) {
      out += "[\n" + value.map((v) => "    " + pyDumps(v)).join(",\n") + "\n  ]";
    } else {
      out += pyDumps(value);
    }
    out += k + 1 < keys.length ? ",\n" : "\n";
  });
  fs.writeFileSync(file, out + "}\n", "utf8");
}

// ---- the reference tokenizers ----

// GPT-2 from vocab.json + merges.txt, built as make_tokenizer_goldens.py builds it:
// BPE.from_file, ByteLevel pre-tokenizer (add_prefix_space=False), ByteLevel decoder,
// ByteLevel post-processor (trim_offsets=False), <|endoftext|> added as a special token.
// The Node binding has no ByteLevel decoder constructor, so the tokenizer is serialized, gets the
// decoder Python's decoders.ByteLevel() serializes to, and is loaded back from that JSON.
async function gpt2Tokenizer(vocab, merges) {
  const tok = new tk.Tokenizer(await tk.BPE.fromFile(vocab, merges));
  tok.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
  tok.setPostProcessor(tk.byteLevelProcessing(false));
  // Strings become AddedToken(content, special=true, normalized=false), as Python's
  // add_special_tokens([AddedToken(..., special=True, normalized=False)]) does.
  tok.addSpecialTokens(["<|endoftext|>"]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlxn-goldens-"));
  try {
    const saved = path.join(dir, "tokenizer.json");
    tok.save(saved, false);
    const json = JSON.parse(fs.readFileSync(saved, "utf8"));
    if (json.decoder !== null) die(`unexpected decoder in the built GPT-2 tokenizer`);
    json.decoder = {
      type: "ByteLevel",
      add_prefix_space: true,
      trim_offsets: true,
      use_regex: true,
    };
    return tk.Tokenizer.fromString(JSON.stringify(json));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The reference tokenizer of one test directory, or null (as load() in the Python script). */
async function load(directory) {
  const file = path.join(directory, "tokenizer.json");
  if (fs.existsSync(file)) return tk.Tokenizer.fromFile(file);
  const vocab = path.join(directory, "vocab.json");
  const merges = path.join(directory, "merges.txt");
  if (fs.existsSync(vocab) && fs.existsSync(merges)) return gpt2Tokenizer(vocab, merges);
  return null;
}

function sha256(file) {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

async function main() {
  const texts = JSON.parse(fs.readFileSync(args.texts, "utf8"));
  if (!fs.existsSync(args.testdata) || !fs.statSync(args.testdata).isDirectory()) {
    die(`${args.testdata} is missing; run scripts/fetch_test_data.sh`);
  }
  fs.mkdirSync(args.out, { recursive: true });

  for (const name of fs.readdirSync(args.testdata).sort(byCodePoint)) {
    const directory = path.join(args.testdata, name);
    const tok = fs.statSync(directory).isDirectory() ? await load(directory) : null;
    if (tok === null) continue;
    const files = {};
    for (const fn of fs.readdirSync(directory).sort(byCodePoint)) {
      files[fn] = sha256(path.join(directory, fn));
    }
    const record = {
      tokenizer: name,
      tokenizers_version: tokenizersVersion,
      files,
      text: texts,
      ids_special: [],
      ids_plain: [],
      decoded: [],
      decoded_skip_special: [],
    };
    for (const text of texts) {
      const idsSpecial = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
      record.ids_special.push(idsSpecial);
      record.ids_plain.push((await tok.encode(text, null, { addSpecialTokens: false })).getIds());
      record.decoded.push(await tok.decode(idsSpecial, false));
      record.decoded_skip_special.push(await tok.decode(idsSpecial, true));
    }
    const out = path.join(args.out, name + ".json");
    writeGolden(out, record);
    const what = `${texts.length} texts, npm tokenizers ${tokenizersVersion}`;
    console.log(`make_tokenizer_goldens: ${out} (${what})`);
  }
}

await main();
