import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "./core/backend.ts";
import { im2colT, transpose2d, type ConvGeometry } from "./core/wasm_kernels.ts";
await selectBackend("wasm");
function t(name: string, f: () => void, reps = 11) {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  console.log(name.padEnd(55), ts[reps >> 1]!.toFixed(2), "ms");
}
for (const [H, C, O] of [[32, 32, 64], [16, 64, 128], [32,1,32], [16,32,64], [8,64,128],[4,128,256]]) {
  const g: ConvGeometry = { batch: 32, inH: H, inW: H, inC: C, outH: H / 2, outW: H / 2, outC: O, fh: 4, fw: 4, sh: 2, sw: 2, top: 1, left: 1 };
  const x = new Float32Array(32 * H * H * C).map(Math.random);
  const n = 32 * H * H / 4;
  const cols = new Float32Array(16 * C * n);
  t(`im2colT x=[32,${H},${H},${C}] (${(cols.length / 1e6).toFixed(2)}M)`, () => im2colT(x, g, cols));
  const xt = new Float32Array(x.length);
  t(`transpose2d [${32*H*H}, ${C}]`, () => transpose2d(x, 32 * H * H, C, xt));
  // gemm of colsT [k, rows] @ dy[rows, outC] in chunks with fresh dy
  const k = 16 * C;
  const perChunk = Math.max(1, Math.min(32, Math.floor(65536 / (n / 32 * O))));
  const rows = perChunk * n / 32;
  const a = tf.randomNormal([k, rows]);
  t(`gemm [${k},${rows}]@[${rows},${O}] x${32 / perChunk}`, () => {
    for (let c = 0; c < 32 / perChunk; c++) {
      const b = tf.randomNormal([rows, O]);
      const y = tf.matMul(a, b); y.dataSync(); y.dispose(); b.dispose();
    }
  }, 5);
  const bb = tf.randomNormal([n, O]);
  t(`  randomNormal [${n}, ${O}] x${32 / perChunk} (subtract)`, () => {
    for (let c = 0; c < 32 / perChunk; c++) { const b = tf.randomNormal([rows, O]); b.dataSync(); b.dispose(); }
  }, 5);
  bb.dispose(); a.dispose();
}
