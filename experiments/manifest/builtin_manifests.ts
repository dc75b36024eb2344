/**
 * Internal: the built-in manifests, `experiments/manifests/<name>.yaml`,
 * imported as text. They are part of the module graph, so they load from a
 * checkout, an `http:` or an `https:` URL alike, need no read permission,
 * and are listed without reading a directory. A test checks that this index
 * names exactly the folder's files.
 *
 * @module
 */
import ablationFixed from "../manifests/ablation-fixed.yaml" with {
  type: "text",
};
import ablationNonlinear from "../manifests/ablation-nonlinear.yaml" with {
  type: "text",
};
import ablationWeightSharing from "../manifests/ablation-weight-sharing.yaml" with {
  type: "text",
};
import baselines from "../manifests/baselines.yaml" with { type: "text" };
import baselinesShapes from "../manifests/baselines-shapes.yaml" with {
  type: "text",
};
import celeba from "../manifests/celeba.yaml" with { type: "text" };
import depth from "../manifests/depth.yaml" with { type: "text" };
import depthShapes from "../manifests/depth-shapes.yaml" with { type: "text" };
import initVariance from "../manifests/init-variance.yaml" with {
  type: "text",
};
import initVarianceShapes from "../manifests/init-variance-shapes.yaml" with {
  type: "text",
};
import latentDim from "../manifests/latent-dim.yaml" with { type: "text" };
import latentDimShapes from "../manifests/latent-dim-shapes.yaml" with {
  type: "text",
};
import mnist from "../manifests/mnist.yaml" with { type: "text" };
import mnistClassification from "../manifests/mnist-classification.yaml" with {
  type: "text",
};
import rankMethods from "../manifests/rank-methods.yaml" with { type: "text" };
import rankMethodsMnist from "../manifests/rank-methods-mnist.yaml" with {
  type: "text",
};
import shapes from "../manifests/shapes.yaml" with { type: "text" };
import shapesPaper from "../manifests/shapes-paper.yaml" with { type: "text" };

/** Each built-in manifest's YAML by name, sorted by name. */
export const BUILTIN_MANIFESTS: Readonly<Record<string, string>> = {
  "ablation-fixed": ablationFixed,
  "ablation-nonlinear": ablationNonlinear,
  "ablation-weight-sharing": ablationWeightSharing,
  "baselines": baselines,
  "baselines-shapes": baselinesShapes,
  "celeba": celeba,
  "depth": depth,
  "depth-shapes": depthShapes,
  "init-variance": initVariance,
  "init-variance-shapes": initVarianceShapes,
  "latent-dim": latentDim,
  "latent-dim-shapes": latentDimShapes,
  "mnist": mnist,
  "mnist-classification": mnistClassification,
  "rank-methods": rankMethods,
  "rank-methods-mnist": rankMethodsMnist,
  "shapes": shapes,
  "shapes-paper": shapesPaper,
};

/**
 * The URL of a built-in manifest's file, which names it in messages and
 * records.
 *
 * @param name A key of {@link BUILTIN_MANIFESTS}.
 * @returns The file's URL (`file:`, `http:` or `https:`).
 */
export function builtinManifestUrl(name: string): string {
  return new URL(`../manifests/${name}.yaml`, import.meta.url).href;
}
