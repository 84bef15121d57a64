"""The web app: draw a digit (or a number) in the browser and watch the network read it.

``create_app(model)`` builds a FastAPI application around one loaded network:

- ``GET /``: the page (``static/index.html``, ``app.js``, ``style.css``): a drawing canvas, live
  prediction with a bar per digit, the 28x28 image the network saw, a "number" mode, and the
  hidden layers' activations (chapter 1's picture of a network at work; chapter 6's feature maps).
- ``POST /api/predict``: one digit → ``{"digit", "probabilities", "preprocessed"}`` (+ ``"activations"``
  with ``?activations=true``).
- ``POST /api/read``: a number → ``{"number", "digits": [{"digit", "confidence", "box"}]}`` (``nndl.segment``).
- ``GET /api/health``: ``{"status": "ok", "model": {...}}``. FastAPI serves the schema at ``/openapi.json``.

The image arrives as a multipart form field ``image`` (a file, or base64 text; a plain urlencoded
form works too), as a raw ``image/png`` or ``image/jpeg`` body, or as JSON
``{"image": "<base64 or data: URL>"}``. Bad input is answered with a JSON error
``{"error": <exception name>, "detail": <message>}``, never a 500: a body over 1 MiB → 413, an
image over 2,000 pixels on a side → 413 (checked from the header, before decoding), a wrong
content type → 415, bad base64 or bytes that are not a PNG/JPEG → 400, a blank image → 422
(``NoDigitError``).

Speed: the network is loaded once. A digit's prediction (decoding, preprocessing, one forward
pass: about 2 ms of CPU) runs inline on the event loop: a hop to the thread pool costs more than
it could give back, as the GIL lets only one thread compute at a time. Reading a number (tens of
milliseconds) goes to the thread pool, so that the loop stays free for other requests meanwhile.
``run_server`` keeps BLAS single-threaded, since for one 784-long input the threads cost more than
they save; uvicorn picks its fast HTTP parser (httptools) and event loop (uvloop) when installed.
To use more cores, ``run_workers`` starts several server processes on one port (SO_REUSEPORT:
the kernel spreads the connections over them). Needs ``pip install 'nndl[web]'``.
"""

import base64
import binascii
from pathlib import Path
from typing import Any

import numpy as np

from .. import safejson
from ..backend import to_numpy
from ..data.images import MAX_SIDE, ImageFormatError, ImageTooLargeError, NoDigitError, preprocess, read_image, to_png
from ..errors import NonFiniteOutputError
from .security import REQUEST_TIMEOUT, SecurityMiddleware, allowed_hosts_for, deadline_protocol, send_json_error

MAX_BODY = 2**20                      # bytes in a request body (1 MiB)
FORMATS = ("PNG", "JPEG")             # decoders allowed for images from the network
RAW_TYPES = {"image/png", "image/jpeg", "image/jpg"}
STATIC_DIR = Path(__file__).resolve().parent / "static"
SKIPPED_KINDS = {"dropout", "flatten"}  # layers that show nothing new in the activations panel


def _web_modules():
    try:
        import fastapi
        import starlette  # noqa: F401 - part of FastAPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the web app needs FastAPI and uvicorn: pip install 'nndl[web]'") from exc
    return fastapi


class APIError(Exception):
    """An input problem to answer with ``status`` and a JSON body naming ``error``."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


# ----- the work behind the endpoints (plain functions) ----------------------------------------------
def _image_errors(exc: Exception) -> APIError:
    from ..segment import SegmentationError

    status = {NoDigitError: 422, SegmentationError: 422, ImageTooLargeError: 413, ImageFormatError: 400}[type(exc)]
    return APIError(status, type(exc).__name__, str(exc))


def predict_payload(network, data: bytes, *, activations: bool = False, max_side: int = MAX_SIDE) -> dict:
    """The answer of /api/predict for encoded image bytes."""
    try:
        x = preprocess(data, max_side=max_side, formats=FORMATS)  # (784,)
    except (NoDigitError, ImageTooLargeError, ImageFormatError) as exc:
        raise _image_errors(exc) from None
    try:
        proba = network.predict_proba(x)[0]  # (n_classes,)
    except NonFiniteOutputError as exc:
        raise APIError(500, "NonFiniteOutputError", str(exc)) from None
    out = {"digit": int(proba.argmax()), "probabilities": [float(p) for p in proba],
           "preprocessed": base64.b64encode(to_png(x)).decode("ascii")}
    if activations:
        out["activations"] = layer_activations(network, x)
    return out


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


# ----- the body-size guard ----------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_body`` bytes with 413 before any endpoint runs.

    A declared Content-Length over the limit is refused unread; otherwise the body is read up to
    the limit (chunked uploads included) and replayed to the application.
    """

    def __init__(self, app, max_body: int = MAX_BODY):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return await self._too_large(send, declared.decode("latin-1"))
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                return await self._too_large(send, f"more than {len(body)}")
            if not message.get("more_body", False):
                break
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send, size: str) -> None:
        await send_json_error(send, 413, "RequestTooLarge",     # (the security headers come from outside)
                              f"the request body is {size} bytes; at most {self.max_body} are accepted",
                              headers=[(b"connection", b"close")])


# ----- the application ----------------------------------------------------------------------------------
IMAGE_BODY = {"requestBody": {"required": True, "description": "the image, in one of four forms", "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                       "properties": {"image": {"type": "string", "format": "binary"}}}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "description": "base64 of a PNG/JPEG file, or a data:image/png;base64,... URL"}}}},
}}}


def create_app(model, *, model_name: str = "model", max_body: int = MAX_BODY, max_side: int = MAX_SIDE,
               allowed_hosts: list[str] | None = None):
    """The FastAPI application serving ``model`` (a loaded ``nndl.Network``). ``allowed_hosts``:
    the Host names it answers to (None: any; ``nndl serve`` passes the names of its address)."""
    fastapi = _web_modules()
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool

    class LayerActivation(BaseModel):
        layer: int = Field(description="index of the layer in the network")
        kind: str
        activation: str | None = None
        shape: list[int] = Field(description="[n] for a dense layer, [maps, h, w] for feature maps")
        values: list[float] = Field(description="the activations, flattened")

    class PredictResponse(BaseModel):
        digit: int
        probabilities: list[float] = Field(description="one per class, summing to 1")
        preprocessed: str = Field(description="base64 PNG of the 28x28 image the network saw")
        activations: list[LayerActivation] | None = None

    class DigitBox(BaseModel):
        digit: int
        confidence: float
        box: list[int] = Field(description="[x0, y0, x1, y1] in the image's pixels, ends exclusive")

    class ReadResponse(BaseModel):
        number: str
        digits: list[DigitBox]

    class HealthResponse(BaseModel):
        status: str
        model: dict

    class ErrorResponse(BaseModel):
        error: str = Field(description="the kind of error, e.g. NoDigitError")
        detail: str

    errors = {code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "bad base64, or not a PNG/JPEG image"), (413, "body over 1 MiB or image over 2,000 pixels a side"),
        (415, "unsupported content type"), (422, "no digit in the image (NoDigitError)"))}

    app = fastapi.FastAPI(title="nndl", version="1", description="Read handwritten digits with a network "
                          "from Neural Networks and Deep Learning.")
    app.add_middleware(BodyLimit, max_body=max_body)
    app.add_middleware(SecurityMiddleware, allowed_hosts=allowed_hosts)     # outermost: runs first
    summary = model_summary(model, model_name)

    @app.exception_handler(APIError)
    async def _api_error(request, exc: APIError):
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/health", response_model=HealthResponse)
    def health():
        return {"status": "ok", "model": summary}

    @app.post("/api/predict", response_model=PredictResponse, response_model_exclude_none=True,
              responses=errors, openapi_extra=IMAGE_BODY)
    async def predict(request: fastapi.Request, activations: bool = False):
        """Read one digit; ``?activations=true`` adds each hidden layer's activations."""
        data = await image_from_request(request)
        # Inline on the event loop, not in the thread pool (see the module's docstring). Returned as a
        # Response, the payload skips re-validation against the schema (it is built to fit it).
        return JSONResponse(predict_payload(model, data, activations=activations, max_side=max_side))

    @app.post("/api/read", response_model=ReadResponse, responses=errors, openapi_extra=IMAGE_BODY)
    async def read(request: fastapi.Request):
        """Read a number of several digits written on one line."""
        data = await image_from_request(request)
        return JSONResponse(await run_in_threadpool(read_payload, model, data, max_side=max_side))

    return app


def _uvicorn():
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the web app needs FastAPI and uvicorn: pip install 'nndl[web]'") from exc
    return uvicorn


def _limit_blas(blas_threads: int) -> None:
    """BLAS and the fused kernels' parallel loops on ``blas_threads`` threads, for the whole process:
    one digit is a tiny product, and each server process is meant to use one core (threads of
    several processes waiting for work on the same cores cost 6 times the latency, measured)."""
    from threadpoolctl import threadpool_limits

    from ..nn import kernels

    threadpool_limits(limits=blas_threads)
    if kernels.active() == "numba":
        from ..nn.kernels import numba_cpu

        numba_cpu.set_threads(blas_threads)


def run_server(model, *, host: str = "127.0.0.1", port: int = 8000, model_name: str = "model",
               blas_threads: int = 1, log_level: str = "warning", allowed_hosts: tuple[str, ...] = (),
               request_timeout: float = REQUEST_TIMEOUT) -> None:
    """Serve ``create_app(model)`` with uvicorn (one process) until interrupted; it answers to the
    names of ``host`` and ``allowed_hosts``, and drops clients slower than ``request_timeout``."""
    uvicorn = _uvicorn()
    _limit_blas(blas_threads)
    app = create_app(model, model_name=model_name, allowed_hosts=allowed_hosts_for(host, allowed_hosts))
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                http=deadline_protocol(request_timeout))


def check_port_free(host: str, port: int) -> int:
    """``port`` (or, for 0, the one the system would choose) if ``host:port`` can be listened on now;
    else an OSError that says so and what to do."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
        return probe.getsockname()[1]


def run_workers(model_path: str | None, workers: int, *, host: str = "127.0.0.1", port: int = 8000,
                model_name: str = "model", blas_threads: int = 1, log_level: str = "warning",
                allowed_hosts: tuple[str, ...] = (), request_timeout: float = REQUEST_TIMEOUT) -> None:
    """Serve the model saved at ``model_path`` (None: the bundled one) from ``workers`` processes.

    Each worker loads the model and runs its own uvicorn server on its own listening socket, all
    bound to one port with SO_REUSEPORT (Linux), so the kernel spreads new connections over the
    workers. (One socket shared by all would let whichever worker wakes first accept a whole burst
    of connections and leave the others idle.) The sockets are listening before the workers start,
    so no connection is refused or lost while they load. Stops, with the workers, on Ctrl-C or
    SIGTERM.
    """
    import multiprocessing
    import signal
    import socket

    _uvicorn()  # fail here, with the message naming the extra, rather than in every worker
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - depends on the platform
        raise OSError("several workers need SO_REUSEPORT (Linux); run one worker (--workers 1) here")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # A plain bind first: a port in use (even by another server's SO_REUSEPORT sockets) is refused
    # here, as one uvicorn process would refuse it, instead of silently sharing its connections.
    port = check_port_free(host, port)
    sockets = []
    try:
        for _ in range(workers):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
        # "spawn": each worker starts a fresh interpreter and loads the model itself (a fork of a
        # process holding BLAS threads is unsafe).
        context = multiprocessing.get_context("spawn")
        hosts = allowed_hosts_for(host, allowed_hosts)
        procs = [context.Process(target=_worker, args=(sock, model_path, model_name, blas_threads, log_level, hosts,
                                                       request_timeout),
                                 name=f"nndl-serve-{i}") for i, sock in enumerate(sockets)]
        for p in procs:
            p.start()
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            for p in procs:
                p.terminate()  # SIGTERM: uvicorn finishes the requests in flight, then exits
            for p in procs:
                p.join(timeout=10)
    finally:
        for sock in sockets:
            sock.close()


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _worker(sock, model_path: str | None, model_name: str, blas_threads: int, log_level: str,
            allowed_hosts: list[str] | None = None, request_timeout: float = REQUEST_TIMEOUT) -> None:
    """One server process of ``run_workers``: load the model, serve on the socket it was given."""
    from ..models.default import load_model

    uvicorn = _uvicorn()
    _limit_blas(blas_threads)
    app = create_app(load_model(model_path), model_name=model_name, allowed_hosts=allowed_hosts)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, http=deadline_protocol(request_timeout))
    uvicorn.Server(config).run(sockets=[sock])
