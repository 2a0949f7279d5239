// Golden encodings for engine/tokenizer: encodes every string of a JSON array
// with @lenml/tokenizers (transformers.js, the reference) and prints a JSON
// array of token-id arrays, one per line.
//
//   node testdata/tokenizer/golden.mjs <node_modules> <tokenizer.json> <corpus.json>
//
// tokenizer_config.json is read from next to tokenizer.json. Encoding adds no
// special tokens (add_special_tokens: false); special-token text in the
// input is recognised.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [nodeModules, tokenizerPath, corpusPath] = process.argv.slice(2);
if (!corpusPath) {
  console.error("usage: golden.mjs <node_modules> <tokenizer.json> <corpus.json>");
  process.exit(2);
}
const require = createRequire(path.resolve(nodeModules) + "/");
const { TokenizerLoader } = require("@lenml/tokenizers");

const tokenizerJSON = JSON.parse(readFileSync(tokenizerPath, "utf8"));
const tokenizerConfig = JSON.parse(
  readFileSync(path.join(path.dirname(tokenizerPath), "tokenizer_config.json"), "utf8"),
);
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
const lines = corpus.map((s) => JSON.stringify(tok.encode(s, { add_special_tokens: false })));
process.stdout.write("[\n" + lines.join(",\n") + "\n]\n");
