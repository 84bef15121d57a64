"""The web app (``nndl serve``): draw digits in the browser and see the network read them.

``create_app(model)`` (``app``) builds the FastAPI application; ``run_server(model, host=, port=)``
(``workers``) serves it with uvicorn; ``payloads`` turns requests' images into the answers; ``runs``
reads the training runs under a folder for the page's Runs tab (``nndl serve --runs DIR``), read-only.
FastAPI and uvicorn are imported only when an app is made: the ``web`` extra
(``pip install -e '.[web]'`` in the checkout).
"""
from .app import create_app
from .workers import run_server

__all__ = ["create_app", "run_server"]
