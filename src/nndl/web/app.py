"""The FastAPI application around one loaded network (``create_app``) and its body-size guard (``BodyLimit``).

- ``GET /``: the page (``static/index.html``, ``app.js``, ``style.css``): a drawing canvas, live
  prediction with a bar per digit, the 28x28 image the network saw, a "number" mode, and the
  hidden layers' activations.
- ``POST /api/predict``: one digit → ``{"digit" (null when the reader will not say), "reason"
  (null, "not-a-digit" or "unsure"), "message", "probabilities", "not_a_digit", "candidates",
  "marks", "preprocessed"}`` (+ ``"activations"`` with ``?activations=true``); see ``nndl.reading``.
- ``POST /api/read``: a number → ``{"number", "digits": [{"digit", "confidence", "box"}]}`` (``nndl.segment``).
- ``GET /api/health``: ``{"status": "ok", "model": {...}, "runs": <the runs folder or null>}``. FastAPI
  serves the schema at ``/openapi.json``.
- ``GET /api/runs`` and ``GET /api/runs/{id}/metrics?since=k`` (with ``runs_dir``, ``nndl serve --runs
  DIR``): the training runs under DIR and a run's rows per epoch, read-only (``nndl.web.runs``); an id
  that is not a run under DIR (``..``, an absolute path, a link out of it) → 404.

The image forms and the answers are ``nndl.web.payloads``'s. Bad input is answered with a JSON
error ``{"error": <exception name>, "detail": <message>}``, never a 500: a body over 1 MiB → 413,
an image over 2,000 pixels on a side → 413 (checked from the header, before decoding), a wrong
content type → 415, bad base64 or bytes that are not a PNG/JPEG → 400, a blank image → 422
(``NoDigitError``, with ``"reason": "blank"``).

A digit's prediction (about 2 ms of CPU) runs inline on the event loop: a hop to the thread pool
costs more than it could give back, as the GIL lets only one thread compute at a time. Reading a
number (tens of milliseconds) goes to the thread pool, so that the loop stays free meanwhile.
FastAPI is imported only when an app is made (the ``web`` extra: ``nndl.errors.install_hint``).
"""

from pathlib import Path

from ..data.images import MAX_SIDE
from ..errors import install_hint
from .payloads import APIError, image_from_request, model_summary, predict_payload, read_payload
from .runs import RunsFolder, add_runs_routes
from .security import SecurityMiddleware, send_json_error

MAX_BODY = 2**20                      # bytes in a request body (1 MiB)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _web_modules():
    try:
        import fastapi
        import starlette  # noqa: F401 - part of FastAPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"the web app needs FastAPI and uvicorn: {install_hint('web')}") from exc
    return fastapi


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
               allowed_hosts: list[str] | None = None, runs_dir: str | None = None):
    """The FastAPI application serving ``model`` (a loaded ``nndl.Network``). ``allowed_hosts``:
    the Host names it answers to (None: any; ``nndl serve`` passes the names of its address).
    ``runs_dir``: the folder whose training runs ``/api/runs`` lists (None: none)."""
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
        digit: int | None = Field(description="the digit read, or null when the reader will not say")
        reason: str | None = Field(None, description="why no digit: not-a-digit or unsure (null when read)")
        message: str = Field("", description="what the page shows: the digit, or e.g. 'unsure: 4 or 9'")
        probabilities: list[float] = Field(description="one per digit, summing to 1")
        not_a_digit: float | None = Field(None, description="the rejection output, for 11-output models")
        candidates: list[int] = Field(default_factory=list, description="the two likeliest digits")
        marks: int = Field(1, description="separate marks in the drawing (2+: try Number mode)")
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
        runs: str | None = Field(None, description="the folder of training runs served (nndl serve --runs)")

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
    runs = RunsFolder(runs_dir) if runs_dir is not None else None   # a missing folder fails here, not later

    @app.exception_handler(APIError)
    async def _api_error(request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/health", response_model=HealthResponse)
    def health():
        return {"status": "ok", "model": summary, "runs": str(runs.root) if runs else None}

    add_runs_routes(app, runs)

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
