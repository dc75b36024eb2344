import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "./core/backend.ts";
await selectBackend("wasm");
function t(name: string, f: () => void, reps = 7) {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  const m = ts[reps >> 1]!;
  return m;
}
const tot = Number(Deno.args[0] ?? 8192);
for (const [k, O] of [[512, 64], [1024, 128], [512,32]]) {
  const base = tf.randomNormal([tot, O]);
  const ab = tf.randomNormal([k, tot]);
  for (const rows of [256, 512, 1024, 2048, 4096, 8192]) {
    if (rows > tot) continue;
    const chunks = tot / rows;
    const as = Array.from({ length: chunks }, () => tf.randomNormal([k, rows]));
    const copyMs = t("", () => { for (let c = 0; c < chunks; c++) { const b = tf.add(base.slice(0, rows), 0); b.dataSync(); b.dispose(); } });
    const ms = t("", () => {
      for (let c = 0; c < chunks; c++) {
        const b = tf.add(base.slice(0, rows), 0);
        const y = tf.matMul(as[c]!, b); y.dataSync(); y.dispose(); b.dispose();
      }
    });
    const g = k * tot * O / ((ms - copyMs) * 1e6);
    console.log(`k=${k} O=${O} rows/chunk=${rows} x${chunks}: ${(ms - copyMs).toFixed(2)} ms  ${g.toFixed(1)} GMAC/s (copy ${copyMs.toFixed(2)})`);
    tf.dispose(as);
  }
  // persistent B (pre-packed)
  const a2 = tf.randomNormal([k * 4, 2048]); const b2 = tf.randomNormal([2048, O]);
  const ms = t("", () => { const y = tf.matMul(a2, b2); y.dataSync(); y.dispose(); });
  console.log(`  persistent B [${k*4},2048]@[2048,${O}]: ${(k*4*2048*O/(ms*1e6)).toFixed(1)} GMAC/s`);
  base.dispose(); ab.dispose();
}
