"""TF Serving REST request bodies for both signatures, and their decoding (tests, clients)."""
import base64

import numpy as np

from fadenn_tf.deploy.signatures import BYTES_SIGNATURE, SERVING_SIGNATURE


def rest_request_body(images=None, signature=SERVING_SIGNATURE, boxes=None, image_bytes=None):
    """JSON-able body of a TF Serving REST predict request (row "instances" format).

    serving_default: images [B,S,S,3] 0..255 -> {"signature_name", "instances":
    [{"images": [[[r,g,b],...]]}, ...]}. predict_image_bytes: image_bytes (list of encoded
    JPEG/PNG bytes) and boxes [B,4] -> instances [{"image_bytes": {"b64": ...}, "boxes":
    [x0,y0,x1,y1]}, ...] (TF Serving decodes {"b64": ...} into the string tensor)."""
    if signature == SERVING_SIGNATURE:
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must be [B,S,S,3], got {arr.shape}")
        inst = [{"images": a.tolist()} for a in arr]
    elif signature == BYTES_SIGNATURE:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if image_bytes is None or len(image_bytes) != len(b):
            raise ValueError("predict_image_bytes needs one encoded image per box")
        inst = [{"image_bytes": {"b64": base64.b64encode(bytes(x)).decode("ascii")},
                 "boxes": [float(v) for v in bb]} for x, bb in zip(image_bytes, b)]
    else:
        raise ValueError(f"unknown signature {signature!r}")
    return {"signature_name": signature, "instances": inst}


def rest_body_to_inputs(body):
    """What TF Serving feeds the signature for a row-format body: {name: batched array}
    ({"b64": s} values decoded to bytes). Returns (signature_name, inputs)."""
    rows = body["instances"]
    names = rows[0].keys()

    def value(v):
        return base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v
    inputs = {}
    for k in names:
        vals = [value(r[k]) for r in rows]
        inputs[k] = (np.array(vals, dtype=object) if isinstance(vals[0], bytes)
                     else np.asarray(vals, dtype=np.float32))
    return body.get("signature_name", SERVING_SIGNATURE), inputs
