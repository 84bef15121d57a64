"""The web app (``nndl serve``): draw digits in the browser and see the network read them.

``create_app(model)`` builds the FastAPI application; ``run_server(model, host=, port=)`` serves
it with uvicorn. FastAPI and uvicorn are imported only when an app is made: ``pip install 'nndl[web]'``.
"""
from .server import create_app, run_server

__all__ = ["create_app", "run_server"]
