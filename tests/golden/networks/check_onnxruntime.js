// Optional cross-check, not part of the test suite: run every NAME.opsetV.onnx
// here with onnxruntime-node on NAME.in.npy and compare with NAME.out.npy
// (max|out - ref| <= 1e-4 * max(1, max|ref|), and the same dims).
//   mkdir -p /tmp/ort && cd /tmp/ort && npm install --ignore-scripts onnxruntime-node
//   NODE_PATH=/tmp/ort/node_modules node tests/golden/networks/check_onnxruntime.js tests/golden/networks
const fs = require('fs'), path = require('path');
const ort = require('onnxruntime-node');
function readNpy(f) {
  const b = fs.readFileSync(f);
  const hl = b.readUInt16LE(8);
  const h = b.slice(10, 10 + hl).toString();
  if (!h.includes("'<f4'") || h.includes("'fortran_order': True")) throw new Error('bad npy ' + f);
  const shape = h.match(/'shape': \(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + 10 + hl, b.byteOffset + b.length));
  return { shape, data };
}
(async () => {
  const dir = process.argv[2] || __dirname;
  let bad = 0, n = 0;
  const files = fs.readdirSync(dir).filter(f => f.endsWith('.onnx')).sort();
  for (const f of files) {
    const name = f.replace(/\.opset\d+\.onnx$/, '');
    const x = readNpy(path.join(dir, name + '.in.npy'));
    const ref = readNpy(path.join(dir, name + '.out.npy'));
    const s = await ort.InferenceSession.create(path.join(dir, f), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' });
    const out = (await s.run({ input: new ort.Tensor('float32', x.data, x.shape) })).output;
    let m = 0, mr = 0;
    const same = JSON.stringify(out.dims) === JSON.stringify(ref.shape);
    for (let i = 0; i < ref.data.length; i++) { m = Math.max(m, Math.abs(out.data[i] - ref.data[i])); mr = Math.max(mr, Math.abs(ref.data[i])); }
    const tol = 1e-4 * Math.max(1, mr);
    const ok = same && m <= tol;
    n++; if (!ok) bad++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${f.padEnd(34)} dims ${JSON.stringify(out.dims)} max|d| ${m.toExponential(2)} rel ${(m / Math.max(1, mr)).toExponential(2)}`);
  }
  console.log(`${n - bad} passed, ${bad} failed`);
})();
