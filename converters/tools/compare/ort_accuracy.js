// node ort_accuracy.js MODEL.onnx PREFIX [--threads N] [--level all|basic|extended|disabled]
// ONNX Runtime (onnxruntime-node, CPU) on the very tensors octet ran: same-inputs wrote PREFIX.inputs (each
// image's preprocessed input), PREFIX.logits (octet's output 0) and PREFIX.json (image paths, labels). Runs
// ORT on each input, writes its logits to PREFIX.ort-logits (f32, as PREFIX.logits) and prints one JSON object: Top-1 of octet and of ORT against the labels (when given),
// their Top-1 agreement, the logit SQNR of octet against ORT over all images, and the images whose top-1
// differs. Top-1 ties go to the lower class index, as in octet's evaluation.
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const ort = require('onnxruntime-node');

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { threads: { type: 'string', default: '1' }, level: { type: 'string', default: 'all' } },
});
if (positionals.length !== 2) {
  console.error('usage: node ort_accuracy.js MODEL.onnx PREFIX [--threads N] [--level all|basic|extended|disabled]');
  process.exit(2);
}
const [modelPath, prefix] = positionals;

function argmax(v) {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

(async () => {
  const index = JSON.parse(fs.readFileSync(prefix + '.json', 'utf8'));
  const shape = index.input_shape;
  const inputSize = shape.reduce((a, b) => a * b, 1);
  const classes = index.classes;
  const count = index.images.length;
  const inputs = fs.openSync(prefix + '.inputs', 'r');
  const octetLogits = new Float32Array(fs.readFileSync(prefix + '.logits').buffer.slice(0));
  if (fs.fstatSync(inputs).size !== count * inputSize * 4 || octetLogits.length !== count * classes)
    throw new Error(prefix + ': .inputs or .logits does not hold ' + count + ' images');
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(args.threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: args.level,
    logSeverityLevel: 3,  // errors only: the shared QDQ files carry unused float initializers ORT warns about
    executionMode: 'sequential',
  });
  const buffer = Buffer.alloc(inputSize * 4);
  const ortLogits = new Float32Array(count * classes);
  let agree = 0, octetRight = 0, ortRight = 0, signal = 0, noise = 0;
  const differ = [];
  for (let i = 0; i < count; i++) {
    fs.readSync(inputs, buffer, 0, buffer.length, i * buffer.length);
    const x = new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.length));
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, shape) });
    const y = result[session.outputNames[0]].data;
    if (y.length !== classes) throw new Error(modelPath + ': output has ' + y.length + ' values, octet ' + classes);
    ortLogits.set(y, i * classes);
    const o = octetLogits.subarray(i * classes, (i + 1) * classes);
    for (let k = 0; k < classes; k++) {
      signal += y[k] * y[k];
      noise += (o[k] - y[k]) * (o[k] - y[k]);
    }
    const a = argmax(o), b = argmax(y);
    if (a === b) agree++;
    else differ.push({ image: index.images[i], octet: a, ort: b, label: index.labels.length ? index.labels[i] : null });
    if (index.labels.length) {
      octetRight += a === index.labels[i];
      ortRight += b === index.labels[i];
    }
  }
  fs.writeFileSync(prefix + '.ort-logits', Buffer.from(ortLogits.buffer));
  const pct = (n) => Number(((100 * n) / count).toFixed(2));
  const out = { images: count, agreement_pct: pct(agree), sqnr_db: noise > 0 ? Number((10 * Math.log10(signal / noise)).toFixed(2)) : 'inf' };
  if (index.labels.length) Object.assign(out, { octet_top1_pct: pct(octetRight), ort_top1_pct: pct(ortRight) });
  out.differ = differ;
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error('ort_accuracy.js: ' + e.message);
  process.exit(1);
});
