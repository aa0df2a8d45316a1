// node ort_bench.js MODEL.onnx [--threads N] [--warmup W] [--iters I] [--ops]
// Per-sample latency of ONNX Runtime (onnxruntime-node, CPU execution provider) on one model at batch 1,
// measured the way octet's benchmark measures: untimed warm-up runs, then timed runs on a monotonic clock
// with nothing else inside the loop, min/p50/p90/p99 with the same percentile rule. Session options:
// intraOpNumThreads N, interOpNumThreads 1, graphOptimizationLevel 'all', executionMode 'sequential'.
// A symbolic dimension (the batch "N") is 1. The input holds deterministic pseudo-random values.
//
// --ops: afterwards, one profiled run in a separate session (so profiling never touches the timed runs)
// counts the kernels ORT ran per op type, e.g. QLinearConv (integer) vs FusedConv (float): what a QDQ model
// really executed. Prints one JSON object.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const ort = require('onnxruntime-node');

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '5' },
    iters: { type: 'string', default: '30' },
    ops: { type: 'boolean', default: false },
  },
});
if (positionals.length !== 1) {
  console.error('usage: node ort_bench.js MODEL.onnx [--threads N] [--warmup W] [--iters I] [--ops]');
  process.exit(2);
}
const modelPath = positionals[0];
const threads = Number(args.threads), warmup = Number(args.warmup), iters = Number(args.iters);

const sessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
};

// octet's benchmark rule: the element at round(p/100 * (n-1)) of the sorted samples.
function percentile(sorted, p) {
  return sorted[Math.min(Math.floor((p / 100) * (sorted.length - 1) + 0.5), sorted.length - 1)];
}

// Float inputs with deterministic values in [-1, 1) (a linear congruential generator); symbolic dims are 1.
function makeFeeds(session) {
  const feeds = {};
  let seed = 1;
  for (const input of session.inputMetadata) {
    if (input.type !== 'float32') throw new Error(`input '${input.name}' is ${input.type}; this benchmark feeds float32`);
    const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; ++i) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      data[i] = seed / 2 ** 31 - 1;
    }
    feeds[input.name] = new ort.Tensor('float32', data, dims);
  }
  return feeds;
}

// Kernel runs per op type in one profiled run, from ORT's Chrome-trace profile (deleted afterwards).
async function kernelOps() {
  const prefix = path.join(os.tmpdir(), `ort_bench_${process.pid}`);
  const session = await ort.InferenceSession.create(modelPath, { ...sessionOptions, enableProfiling: true, profileFilePrefix: prefix });
  await session.run(makeFeeds(session));
  session.endProfiling();
  await session.release();
  const dir = path.dirname(prefix);
  const files = fs.readdirSync(dir).filter((f) => path.join(dir, f).startsWith(prefix) && f.endsWith('.json'));
  if (files.length !== 1) throw new Error(`expected one profile file ${prefix}*.json, found ${files.length}`);
  const file = path.join(dir, files[0]);
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.unlinkSync(file);
  const ops = {};
  for (const e of events)
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) ops[e.args.op_name] = (ops[e.args.op_name] || 0) + 1;
  return ops;
}

async function main() {
  const loadStart = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(modelPath, sessionOptions);
  const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
  const feeds = makeFeeds(session);
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const samples = new Array(iters);
  for (let i = 0; i < iters; ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    samples[i] = Number(process.hrtime.bigint() - start) / 1e6;
  }
  await session.release();
  samples.sort((a, b) => a - b);
  const result = {
    model: modelPath,
    runtime: `onnxruntime-node ${ort.env.versions.node}`,
    threads,
    batch: 1,
    min_ms: samples[0],
    p50_ms: percentile(samples, 50),
    p90_ms: percentile(samples, 90),
    p99_ms: percentile(samples, 99),
    load_ms: loadMs,
  };
  if (args.ops) result.ops = await kernelOps();
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(`ort_bench: ${e.message || e}`);
  process.exit(1);
});
