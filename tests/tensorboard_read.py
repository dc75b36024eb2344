"""Reads a folder of event files with TensorBoard's own EventAccumulator (as
`tensorboard --logdir` does, restarts purged) and prints what it found as
JSON: {"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step,
text], ...]}, "images": {tag: [[step, width, height, bytes], ...]}}.

Used by tests/tensorboard_test.ts where `import tensorboard` works (for
instance PYTHONPATH set to a TensorBoard source tree with its protos compiled;
see tests/reference/generate_tfevents.py).
"""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util


def main(folder):
    acc = event_accumulator.EventAccumulator(
        folder,
        size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.IMAGES: 0,
            event_accumulator.TENSORS: 0,
        },
    )
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "texts": {}, "images": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["images"]:
        out["images"][tag] = [
            [e.step, e.width, e.height, len(e.encoded_image_string)]
            for e in acc.Images(tag)
        ]
    for tag in tags["tensors"]:
        out["texts"][tag] = [
            [e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode()]
            for e in acc.Tensors(tag)
        ]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
