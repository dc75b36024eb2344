"""Reference fixture for core/tfevents.ts: event records written by
TensorBoard's own Python writer (tensorboard.summary.writer.record_writer,
its record framing and masked CRC32C) from Event protobufs built with
TensorBoard's own message definitions (tensorboard/compat/proto/*.proto,
compiled with protoc), so the bytes owe nothing to this project's code.

TensorBoard is not on PyPI's reach here; it runs from its source tree:

    git clone https://github.com/tensorflow/tensorboard  # any checkout
    cd tensorboard && protoc --python_out=. $(find tensorboard -name '*.proto')
    PYTHONPATH=$PWD /usr/bin/python3 <irmae>/tests/reference/generate_tfevents.py

with Debian's python3-protobuf, python3-absl, python3-numpy and
protobuf-compiler. Writes tfevents.json beside this file: the events as
data ("events") and the file TensorBoard wrote, base64 ("recordsBase64").
Bump VERSION whenever the output changes.
"""

import base64
import io
import json
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard import version as tensorboard_version

VERSION = 1

# Opaque image bytes: the format stores them as given.
IMAGE = bytes([137, 80, 78, 71, 13, 10, 26, 10, 0, 1, 2, 255])

EVENTS = [
    {"wallTime": 1765000000.25, "step": 0, "fileVersion": "brain.Event:2"},
    {
        "wallTime": 1765000001.5,
        "step": 0,
        "values": [{"tag": "manifest", "text": "name: shapes\nsteps: 200\n"}],
    },
    {
        "wallTime": 1765000002.75,
        "step": 100,
        "values": [
            {"tag": "loss/train", "scalar": 0.125},
            {"tag": "mse/validation", "scalar": 0.1},
            {"tag": "rank/1e-2", "scalar": 7},
            {"tag": "rank/zero", "scalar": 0},
        ],
    },
    {
        "wallTime": 1765000003.0,
        "step": 100,
        "values": [
            {
                "tag": "reconstructions",
                "image": {"height": 3, "width": 4, "channels": 1},
            }
        ],
    },
    {"wallTime": 1765000004.0, "step": 5000000000, "sessionStart": True},
]


def to_proto(spec):
    event = event_pb2.Event(wall_time=spec["wallTime"], step=spec["step"])
    if "fileVersion" in spec:
        event.file_version = spec["fileVersion"]
    elif spec.get("sessionStart"):
        event.session_log.status = event_pb2.SessionLog.START
    else:
        for v in spec["values"]:
            value = event.summary.value.add(tag=v["tag"])
            if "scalar" in v:
                value.simple_value = v["scalar"]
            elif "text" in v:
                value.metadata.plugin_data.plugin_name = "text"
                value.tensor.dtype = 7  # DT_STRING
                value.tensor.string_val.append(v["text"].encode("utf-8"))
            else:
                image = v["image"]
                value.image.height = image["height"]
                value.image.width = image["width"]
                value.image.colorspace = image["channels"]
                value.image.encoded_image_string = IMAGE
    return event


def main():
    out = io.BytesIO()
    writer = RecordWriter(out)
    for spec in EVENTS:
        writer.write(to_proto(spec).SerializeToString())
    fixture = {
        "generator": os.path.basename(__file__),
        "version": VERSION,
        "tensorboard": tensorboard_version.VERSION,
        "imageBase64": base64.b64encode(IMAGE).decode("ascii"),
        "events": EVENTS,
        "recordsBase64": base64.b64encode(out.getvalue()).decode("ascii"),
    }
    path = os.path.join(os.path.dirname(__file__), "tfevents.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
