/**
 * A short training loop for plug-in tests: two Adam steps of a shapes
 * autoencoder around a latent regularizer, counting tensors. Test support
 * of this repository (not published).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createAdam } from "../../core/adam.ts";
import { createAutoencoder } from "../../core/autoencoder.ts";
import { Rng } from "../../core/random.ts";
import type { LatentRegularizer } from "../../core/types.ts";
import { createDecoder, createEncoder } from "../../models/architectures.ts";

/**
 * Two Adam steps of a shapes autoencoder around `regularizer` on two random
 * images; the second step's tensor count is compared with the first's.
 * Uses whichever tfjs backend the caller selected.
 */
export async function trainTwoSteps(regularizer: LatentRegularizer): Promise<{
  losses: number[];
  before: number;
  after: number;
}> {
  const encoder = createEncoder("shapes", {
    latentDim: regularizer.inputDim,
    seed: 1,
  });
  const decoder = createDecoder("shapes", {
    latentDim: regularizer.latentDim,
    seed: 2,
    output: regularizer.decoderOutput ?? "tanh",
  });
  const model = createAutoencoder(encoder, { regularizer, decoder });
  const adam = createAdam(model.variables, { lr: 1e-3 });
  const images = new Rng(7).uniformArray(2 * 32 * 32 * 3, 0, 1);
  const step = async (): Promise<number> => {
    const x = tf.tensor4d(images, [2, 32, 32, 3]);
    try {
      const loss = adam.minimize(() => model.loss(x, true).total);
      const value = (await loss.data())[0]!;
      loss.dispose();
      return value;
    } finally {
      x.dispose();
    }
  };
  const warmUp = await step();
  const before = tf.memory().numTensors;
  const second = await step();
  const after = tf.memory().numTensors;
  adam.dispose();
  model.dispose();
  return { losses: [warmUp, second], before, after };
}
