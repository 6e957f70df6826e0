#!/usr/bin/env node
// Time the benchmark cases in ONNX Runtime (npm onnxruntime-node, CPU
// execution provider, MLAS kernels).
//
//   node bench_ort.mjs --dir DIR [--cases A,B] [--threads 1,2] [--budget S]
//                      [--configs out-of-box,tuned,tuned-thp] [--output FILE]
//
// DIR holds what `bench_torch.py --export-onnx DIR` wrote: NAME.onnx (the
// case's layer exported by torch.onnx.export, opset 17, static shapes),
// NAME.in.bin (the float32 input) and NAME.check.json (samples of PyTorch's
// output, checked here before timing: a wrong result is never reported).
//
// Each configuration runs in its own child process, since its environment
// must be set before the process starts:
//   out-of-box  session options left at their defaults (ORT's own thread
//               count); session.run(feeds) returns a fresh output tensor
//               every call; the environment as it is.
//   tuned       graphOptimizationLevel 'all', sequential execution, one
//               inter-op thread, CPU memory arena and memory patterns on
//               (ORT's scratch is reused across calls), the output written
//               into a tensor allocated once (pre-allocated fetches).
//   tuned-thp   tuned, and glibc malloc on transparent huge pages without
//               returning memory to the system (GLIBC_TUNABLES, as for
//               PyTorch). ORT's arena keeps its own memory anyway; this
//               mostly changes the binding's output copy, and on a busy
//               machine huge-page faults can stall: so both are measured.
// tuned, tuned-thp: intra-op threads 1 and 2, the faster kept. All: warm-up,
// median of repeats. onnxruntime-node returns every output as a new JS
// array, a copy made after ORT has written the output (into the
// pre-allocated tensor too): output_copy_ms is that copy timed on its own
// (allocate + copy), in the same process.
// Prints JSON [{name, engine: "onnxruntime", ms, threads, config, ...}].
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const TUNABLES =
  'glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:' +
  'glibc.malloc.trim_threshold=0x7fffffffffffffff';
const CASES = [
  'K1_audio_fir2x', 'K3_audio_mid', 'K4_audio_hifigan', 'K5_video_sr2x_2d',
  'K6_video_sr2x_3d', 'K7_video_fsrcnn', 'K8_video_interp_t2',
];

function parseArgs(argv) {
  const a = { threads: '1,2', budget: 1.5, configs: 'out-of-box,tuned,tuned-thp' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    a[k.slice(2)] = argv[++i];
  }
  if (!a.dir) throw new Error('--dir DIR (from bench_torch.py --export-onnx) is required');
  a.budget = Number(a.budget);
  return a;
}

async function timeCalls(fn, budget, maxReps = 50) {
  let t0 = performance.now();
  await fn();
  const first = (performance.now() - t0) / 1e3;
  if (first < 0.5) await fn();
  const minReps = first > 2 ? 2 : first > 0.5 ? 3 : 5;
  const times = [];
  const start = performance.now();
  while (times.length < maxReps &&
         (times.length < minReps || (performance.now() - start) / 1e3 < budget)) {
    t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  const n = times.length;
  const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  return [median, n];
}

function check(name, data, ref) {
  let err = 0, scale = 1;
  ref.index.forEach((idx, i) => {
    const v = data[idx];
    err = Math.max(err, Number.isNaN(v) ? Infinity : Math.abs(v - ref.value[i]));
    scale = Math.max(scale, Math.abs(ref.value[i]));
  });
  if (!(err <= 1e-4 * scale))
    throw new Error(`${name}: ONNX Runtime disagrees with PyTorch (max error ${err})`);
}

async function worker(args) {
  const ort = require('onnxruntime-node');
  const wanted = args.cases ? args.cases.split(',') : CASES;
  const best = args.worker !== 'out-of-box'; // tuned session options
  const results = [];
  for (const name of CASES.filter((c) => wanted.includes(c))) {
    const base = `${args.dir}/${name}`;
    const ref = JSON.parse(readFileSync(`${base}.check.json`, 'utf8'));
    const buf = readFileSync(`${base}.in.bin`);
    const input = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const x = new ort.Tensor('float32', input, ref.in_dims);
    const outCount = ref.out_dims.reduce((p, v) => p * v, 1);
    const y = best ? new ort.Tensor('float32', new Float32Array(outCount), ref.out_dims) : null;
    const per = {};
    let lastOut = null;
    // Out of the box: ORT's own thread count (its default options).
    for (const t of best ? args.threads.split(',').map(Number) : ['default']) {
      const opts = best
        ? {
            executionProviders: ['cpu'], intraOpNumThreads: t, interOpNumThreads: 1,
            graphOptimizationLevel: 'all', executionMode: 'sequential',
            enableCpuMemArena: true, enableMemPattern: true,
          }
        : {};
      const session = await ort.InferenceSession.create(`${base}.onnx`, opts);
      const run = best ? () => session.run({ x }, { y }) : () => session.run({ x });
      const out = await run();
      lastOut = out.y.data;
      check(name, out.y.data, ref);
      if (best) check(name, y.data, ref); // written in place, then copied
      const [ms, reps] = await timeCalls(run, args.budget);
      per[t] = [ms, reps];
      process.stderr.write(`  onnxruntime ${args.worker} ${name} threads=${t} ` +
                           `${ms.toFixed(3)} ms (${reps} reps)\n`);
      await session.release();
    }
    const bestT = Object.keys(per).reduce((a, b) => (per[b][0] < per[a][0] ? b : a));
    // The binding hands the output back as a new JS array, a copy, even when
    // ORT wrote it into a pre-allocated tensor: time that alone (allocate and
    // copy, as the binding does) to tell the engine from the binding.
    const [copyMs] = await timeCalls(async () => new Float32Array(outCount).set(lastOut),
                                     args.budget / 3);
    results.push({
      name, engine: 'onnxruntime', config: args.worker,
      ms: Number(per[bestT][0].toFixed(4)), threads: best ? Number(bestT) : bestT,
      repeats: per[bestT][1], output_copy_ms: Number(copyMs.toFixed(4)),
      ms_by_threads: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, Number(v[0].toFixed(4))])),
      onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
      glibc_tunables: process.env.GLIBC_TUNABLES ?? '',
    });
  }
  process.stdout.write(JSON.stringify(results));
}

function driver(args) {
  const me = fileURLToPath(import.meta.url);
  const results = [];
  for (const config of args.configs.split(',')) {
    if (!['out-of-box', 'tuned', 'tuned-thp'].includes(config))
      throw new Error(`unknown config ${config}`);
    const env = { ...process.env };
    if (config === 'tuned-thp') env.GLIBC_TUNABLES = TUNABLES;
    const childArgs = [me, '--worker', config, '--dir', args.dir, '--threads', args.threads,
                       '--budget', String(args.budget)];
    if (args.cases) childArgs.push('--cases', args.cases);
    const r = spawnSync(process.execPath, childArgs,
                        { env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`bench_ort ${config} failed (status ${r.status})`);
    results.push(...JSON.parse(r.stdout.toString()));
  }
  const text = JSON.stringify(results, null, 1) + '\n';
  if (args.output) writeFileSync(args.output, text);
  else process.stdout.write(text);
}

const args = parseArgs(process.argv.slice(2));
if (args.worker) await worker(args);
else driver(args);
