import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "./core/backend.ts";
import { configureWasmKernels } from "./core/wasm_kernels.ts";
await selectBackend("wasm");
tf.env().set("PROD", true);
const path = (Deno.args[0] ?? "auto") as "auto";
configureWasmKernels({ convPath: path });
function time(name: string, f: () => tf.Tensor, reps = 15) {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const y = f();
    y.dataSync();
    ts.push(performance.now() - t0);
    y.dispose();
  }
  ts.sort((a, b) => a - b);
  console.log(name.padEnd(50), ts[reps >> 1]!.toFixed(2), "ms (min", ts[0]!.toFixed(2), ")");
}
const r = (s: number[]) => tf.randomNormal(s);
// fresh filter each call emulates training (weights change every step)
const fresh = Deno.args[1] === "fresh";
for (const [b, h, ci, co] of [[32, 8, 128, 64], [32, 16, 64, 32]] as const) {
  const dy = r([b, h, h, ci]);
  let w = r([4, 4, co, ci]);
  time(`convT fwd [${b},${h},${h},${ci}] -> ${co}`, () => {
    if (fresh) { const w2 = tf.add(w, 0); w.dispose(); w = w2; }
    return tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, [b, 2 * h, 2 * h, co], 2, 1);
  });
  const x = r([b, 2 * h, 2 * h, co]);
  time(`conv (dx of convT) [${b},${2*h},${2*h},${co}] -> ${ci}`, () => {
    if (fresh) { const w2 = tf.add(w, 0); w.dispose(); w = w2; }
    return tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 1);
  });
  time(`dW of convT x=[${b},${2*h},${2*h},${co}] dy=[${b},${h},${h},${ci}]`, () =>
    (tf as any).conv2DBackpropFilter?.(x as tf.Tensor4D, dy as tf.Tensor4D, [4, 4, co, ci], 2, 1));
}
