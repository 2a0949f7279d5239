// Runs an ORIGINAL TF.js graph model (pure JS CPU backend) on given inputs, so
// tests can compare a converted ONNX model against it.
//
//   node scripts/tfjs_reference.mjs REQUEST.json RESPONSE.json
//
// REQUEST:  {"model": "path/to/model.json",
//            "tensors": [{"shape": [n, 64, 64, 1], "data": [...]}],       // fed as is
//            "images":  [{"w": W, "h": H, "rgb": [0..255, ...]}],          // HWC RGB bytes
//            "preprocess": {"size": [64, 64], "rgb": [0.2989, 0.587, 0.114], "sub": 0.5, "mul": 2}}
// RESPONSE: {"backend": "cpu", "version": "4.22.0", "output_names": ["Identity", ...],
//            "tensors": [{"shape": [...], "data": [...], "outputs": [...]}], // first output; all outputs
//            "images":  [{"input": [...], "output": [...], "outputs": [...]}]} // preprocessed input + first output; all outputs
//
// Outputs are in model.outputNodes order, named in output_names (the TF
// node names the ONNX converter keeps).
//
// Images are preprocessed the way @vladmandic/human's emotion module does
// (src/gear/emotion.ts): x/255, tf.image.resizeBilinear(size, alignCorners
// false), gray = sum(rgb * weights), (gray - sub) * mul. With "rgb": null the
// three channels are kept: x/255, resizeBilinear, (x - sub) * mul (human's
// face modules: blazeface sub 0.25 mul 2, facemesh/antispoof sub 0 mul 1,
// faceres sub 0 mul 255).
//
// @tensorflow/tfjs is loaded from deps/node/node_modules (scripts/setup.sh --test).
// The result goes to a file because tfjs prints notices on stdout.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'deps', 'node', 'package.json'));
const tf = require('@tensorflow/tfjs');

async function loadGraphModel(modelPath) {
  const json = JSON.parse(readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const specs = [];
  const bufs = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) bufs.push(readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    userDefinedMetadata: json.userDefinedMetadata,
    signature: json.signature,
  });
  return tf.loadGraphModel(handler);
}

async function main() {
  const [reqPath, respPath] = process.argv.slice(2);
  if (!reqPath || !respPath) {
    console.error('usage: node scripts/tfjs_reference.mjs REQUEST.json RESPONSE.json');
    process.exit(2);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  const req = JSON.parse(readFileSync(reqPath, 'utf8'));
  const model = await loadGraphModel(req.model);
  const resp = { backend: tf.getBackend(), version: tf.version.tfjs, output_names: (model.executor?.graph?.outputs?.map((n) => n.name) ?? model.outputNodes).map((n) => n.split(':')[0]), tensors: [], images: [] };

  for (const t of req.tensors || []) {
    const x = tf.tensor(Float32Array.from(t.data), t.shape, 'float32');
    const y = model.execute(x);
    const ys = Array.isArray(y) ? y : [y];
    const outputs = [];
    for (const o of ys) outputs.push({ shape: o.shape, data: Array.from(await o.data()) });
    // first output at top level; all of them (graph output order) in outputs
    resp.tensors.push({ ...outputs[0], outputs });
    tf.dispose([x, ...ys]);
  }

  const pp = req.preprocess || { size: [64, 64], rgb: [0.2989, 0.587, 0.114], sub: 0.5, mul: 2 };
  for (const im of req.images || []) {
    const out = tf.tidy(() => {
      const img = tf.tensor(Uint8Array.from(im.rgb), [1, im.h, im.w, 3], 'int32').toFloat().div(255);
      const resize = tf.image.resizeBilinear(img, pp.size, false);
      let x = resize;
      if (pp.rgb) {
        const channels = tf.mul(resize, tf.tensor1d(pp.rgb));
        x = tf.sum(channels, 3, true);
      }
      const input = tf.mul(tf.sub(x, pp.sub), pp.mul);
      const y = model.execute(input);
      return [input, ...(Array.isArray(y) ? y : [y])];
    });
    const outputs = [];
    for (const o of out.slice(1)) outputs.push(Array.from(await o.data()));
    resp.images.push({ input: Array.from(await out[0].data()), output: outputs[0], outputs });
    tf.dispose(out);
  }
  writeFileSync(respPath, JSON.stringify(resp));
}

main().catch((e) => {
  console.error(e?.stack || String(e));
  process.exit(1);
});
