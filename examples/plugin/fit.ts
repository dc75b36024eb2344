/**
 * Training without a manifest: this project's plug-ins built in code and
 * trained with `fit` on MNIST at 28x28; the live model and its history come
 * back, and nothing is written.
 *
 *     deno run -A fit.ts [steps]
 *
 * @module
 */
import {
  createAutoencoder,
  createMnist,
  createRegistries,
  fit,
  selectBackend,
} from "@irmae/irmae";
import { mnist28Decoder, mnist28Encoder, orthogonalChain } from "./plugins.ts";

if (import.meta.main) {
  const steps = Number(Deno.args[0] ?? 300);
  await selectBackend("auto");
  const registries = createRegistries([
    mnist28Encoder,
    mnist28Decoder,
    orthogonalChain,
  ]);
  const data = createMnist({ size: 28, train: 2000, val: 500 });
  const latentDim = 16;
  const regularizer = registries.regularizer.create(
    { kind: "orthogonal-chain", numMatrices: 4 },
    { latentDim, seed: 0 },
  );
  const model = createAutoencoder(
    registries.encoder.create({ kind: "mnist28" }, {
      imageShape: data.imageShape,
      outputDim: latentDim,
      seed: 1,
    }),
    {
      regularizer,
      decoder: registries.decoder.create({ kind: "mnist28" }, {
        imageShape: data.imageShape,
        latentDim,
        output: "tanh",
        seed: 2,
      }),
    },
  );
  const { history } = await fit(model, data, {
    steps,
    lr: 1e-3,
    evalEvery: Math.max(1, Math.floor(steps / 4)),
    evalSize: 500,
  });
  console.table(
    history.map((h) => ({
      step: h.step,
      "val MSE": h.valMse.toFixed(4),
      "rank@1e-3": h.rank["1e-3"],
    })),
  );
  model.dispose();
}
