"""The work behind the endpoints: a request's image bytes in, the API's JSON answers out.

Plain functions, no FastAPI: ``image_from_request`` takes the image out of a request body (a
multipart field ``image``, a raw PNG/JPEG body, or JSON ``{"image": "<base64 or data: URL>"}``);
``predict_payload`` and ``read_payload`` answer /api/predict and /api/read. Bad input raises
``APIError`` with the HTTP status and the error's name.
"""

import base64
import binascii
from typing import Any

import numpy as np
from scipy import ndimage

from .. import safejson
from ..backend import to_numpy
from ..data.imagefile import read_grey
from ..data.images import MAX_SIDE, ImageFormatError, ImageTooLargeError, NoDigitError, preprocess, read_image, to_png
from ..errors import NonFiniteOutputError
from ..reading import decide

FORMATS = ("PNG", "JPEG")             # decoders allowed for images from the network
RAW_TYPES = {"image/png", "image/jpeg", "image/jpg"}
SKIPPED_KINDS = {"dropout", "flatten"}  # layers that show nothing new in the activations panel
MARK_INK = 0.2                # ink above this (of the strongest) is part of a mark (``count_marks``)
MARK_SHARE = 0.1              # a mark holds at least this share of all the ink; smaller bits are specks
MARK_SIDE = 100               # marks are counted on the image box-averaged to about this many pixels a side


class APIError(Exception):
    """An input problem to answer with ``status`` and a JSON body naming ``error``."""

    def __init__(self, status: int, error: str, detail: str, reason: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.reason = status, error, detail, reason

    def body(self) -> dict:
        """The JSON answer: the error's name and detail (and the reader's reason, for a blank image)."""
        return {"error": self.error, "detail": self.detail, **({"reason": self.reason} if self.reason else {})}


# ----- the work behind the endpoints ------------------------------------------------------------------
def _image_errors(exc: Exception) -> APIError:
    from ..segment import SegmentationError

    status = {NoDigitError: 422, SegmentationError: 422, ImageTooLargeError: 413, ImageFormatError: 400}[type(exc)]
    return APIError(status, type(exc).__name__, str(exc), reason="blank" if isinstance(exc, NoDigitError) else None)


def predict_payload(network, data: bytes, *, activations: bool = False, max_side: int = MAX_SIDE) -> dict:
    """The answer of /api/predict for encoded image bytes: the reading (``nndl.reading``), the
    28x28 image the network saw, and ``marks``, how many separate marks the drawing holds (two or
    more: perhaps several digits, for Number mode)."""
    try:
        x = preprocess(data, max_side=max_side, formats=FORMATS)  # (784,)
        # decoded again (~0.1 ms for a 280-pixel canvas): preprocess keeps its grey image to itself
        marks = drawing_marks(read_grey(data, max_side=max_side, formats=FORMATS))
    except (NoDigitError, ImageTooLargeError, ImageFormatError) as exc:
        raise _image_errors(exc) from None
    try:
        proba = network.predict_proba(x)[0]  # (n_classes,)
    except NonFiniteOutputError as exc:
        raise APIError(500, "NonFiniteOutputError", str(exc)) from None
    reading = decide(proba)[0]          # the digit, or none with a reason (nndl.reading)
    out = {**reading.to_dict(), "marks": marks,
           "preprocessed": base64.b64encode(to_png(x)).decode("ascii")}
    if activations:
        out["activations"] = layer_activations(network, x)
    return out


def drawing_marks(grey: np.ndarray) -> int:
    """``count_marks`` of a whole grey image (``read_grey``'s uint8 or float levels), quickly.

    ``nndl.data.images.ink_map`` takes ~3 ms on a 280-pixel canvas (its speck search runs at full
    size), too slow for every stroke. A rough ink does for counting marks: the image box-averaged
    down to about ``MARK_SIDE`` pixels a side, its paper the median level (dark ink on light paper
    is inverted), scaled so that the strongest ink is 1 (~0.2 ms in all).
    """
    g = np.asarray(grey)
    k = max(1, max(g.shape) // MARK_SIDE)
    h, w = g.shape[0] // k * k, g.shape[1] // k * k      # (the last few rows and columns are left out)
    if h == 0 or w == 0:
        return 0
    band = g[0:h:k, :w].astype(np.float32)               # the sum of each k x k block: k + k slices
    for i in range(1, k):
        band += g[i:h:k, :w]
    small = band[:, 0::k].copy()
    for j in range(1, k):
        small += band[:, j::k]
    small *= 1.0 / (k * k * (255.0 if g.dtype == np.uint8 else 1.0))   # (h/k, w/k) in [0, 1]
    paper = float(np.median(small.ravel()[::max(1, small.size // 4096)]))
    ink = paper - small if paper > 0.5 else small - paper
    strongest = float(ink.max())
    return count_marks(ink / strongest) if strongest > 0 else 0


def count_marks(ink: np.ndarray) -> int:
    """The separate marks in an ink map (h, w), 0 on the paper, 1 on the strongest ink (as
    ``nndl.data.images.ink_map``'s): 8-connected parts of the ink above ``MARK_INK``, each holding
    at least ``MARK_SHARE`` of the ink, so that specks and stray dots do not count. A digit is
    usually one mark (a 5's detached top stroke makes two); two digits side by side are two."""
    mask = ink > MARK_INK
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return n
    mass = np.bincount(labels.ravel(), weights=ink.ravel())[1:]  # (n,): the ink of each part
    return int(np.count_nonzero(mass >= MARK_SHARE * mass.sum()))


def read_payload(network, data: bytes, *, max_side: int = MAX_SIDE) -> dict:
    """The answer of /api/read for encoded image bytes."""
    from ..data.images import ink_map
    from ..segment import SegmentationError, read_ink

    try:
        return read_ink(network, ink_map(read_image(data, max_side=max_side, formats=FORMATS))).to_dict()
    except (NoDigitError, SegmentationError, ImageTooLargeError, ImageFormatError) as exc:
        raise _image_errors(exc) from None
    except NonFiniteOutputError as exc:
        raise APIError(500, "NonFiniteOutputError", str(exc)) from None


def layer_activations(network, x: np.ndarray) -> list[dict]:
    """Each hidden layer's activations for one input, running the layers' forward one by one.

    Dense layers give a vector ``shape [n]``; convolution and pooling layers give feature maps
    ``shape [maps, h, w]``; ``values`` is the flattened array, rounded to 4 decimals.
    """
    a = network.prepare_input(x)  # (1, *input_shape)
    out = []
    for i, layer in enumerate(network.layers[:-1]):  # the output layer is shown as probabilities
        a = layer.forward(a)
        if layer.kind in SKIPPED_KINDS:
            continue
        arr = np.asarray(to_numpy(a[0]), dtype=np.float64)
        act = getattr(getattr(layer, "activation", None), "name", None)
        out.append({"layer": i, "kind": layer.kind, "activation": act, "shape": list(arr.shape),
                    "values": np.round(arr.ravel(), 4).tolist()})
    return out


def model_summary(network, name: str) -> dict:
    return {"name": name, "layers": [repr(layer) for layer in network.layers],
            "n_params": int(network.n_params), "n_classes": int(network.n_classes),
            "input_shape": list(network.input_shape)}


# ----- request bodies → image bytes ------------------------------------------------------------------
def decode_base64_image(text: Any) -> bytes:
    """Image bytes from base64 text or a ``data:image/...;base64,`` URL (400/415 when malformed)."""
    if not isinstance(text, str) or not text.strip():
        raise APIError(400, "BadRequest", 'the "image" value must be a non-empty string of base64 or a data: URL')
    text = text.strip()
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        media = header[5:].split(";")[0].strip().lower()
        if not sep or ";base64" not in header.lower():
            raise APIError(400, "BadBase64", "a data: URL must look like data:image/png;base64,<base64>")
        if media not in RAW_TYPES:
            raise APIError(415, "UnsupportedMediaType", f"the data: URL holds {media or 'no media type'}; "
                           "send image/png or image/jpeg")
    text = "".join(text.split())
    text += "=" * (-len(text) % 4)  # forgive missing padding
    altchars = b"-_" if ("-" in text or "_" in text) else None  # the URL-safe alphabet
    try:
        data = base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(400, "BadBase64", f"the image is not valid base64 ({exc})") from None
    if not data:
        raise APIError(400, "BadRequest", "the image is empty")
    return data


async def image_from_request(request) -> bytes:
    """The image bytes of a request: multipart field ``image``, raw PNG/JPEG, or JSON with base64."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in RAW_TYPES:
        data = await request.body()
        if not data:
            raise APIError(400, "BadRequest", f"the {media} body is empty")
        return data
    if media == "multipart/form-data":            # (not x-www-form-urlencoded: only the documented types)
        try:
            form = await request.form(max_files=4, max_fields=16)
        except Exception as exc:  # noqa: BLE001 - malformed multipart raises parser-specific errors
            raise APIError(400, "BadRequest", f"the multipart form could not be parsed ({exc})") from None
        field = form.get("image")
        if field is None:
            raise APIError(400, "BadRequest", 'the multipart form has no field named "image"')
        if isinstance(field, str):  # a text field (or a plain HTML form's): base64 or a data: URL
            return decode_base64_image(field)
        data = await field.read()
        if not data:
            raise APIError(400, "BadRequest", 'the "image" file is empty')
        return data
    if media == "application/json":
        try:
            payload = safejson.loads(await request.body(), "the JSON body")
        except (ValueError, UnicodeDecodeError) as exc:
            raise APIError(400, "BadRequest", f"the JSON body could not be parsed ({exc})") from None
        if not isinstance(payload, dict) or "image" not in payload:
            raise APIError(400, "BadRequest", 'the JSON body must be an object like {"image": "<base64>"}')
        return decode_base64_image(payload["image"])
    raise APIError(415, "UnsupportedMediaType",
                   f"content type {media or '(none)'} is not accepted; send image/png, image/jpeg, "
                   'multipart/form-data with a field "image", or application/json {"image": "<base64>"}')
