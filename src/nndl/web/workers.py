"""Serving the app: ``run_server`` (one uvicorn process) and ``run_workers`` (several, on one port).

Each server process keeps BLAS single-threaded, since for one 784-long input the threads cost
more than they save; uvicorn picks its fast HTTP parser (httptools) and event loop (uvloop) when
installed. ``run_workers`` uses more cores: several server processes on one port (SO_REUSEPORT:
the kernel spreads the connections over them). Needs the ``web`` extra (``nndl.errors.install_hint``).
"""

from ..errors import install_hint
from .app import create_app
from .security import REQUEST_TIMEOUT, allowed_hosts_for, deadline_protocol


def _uvicorn():
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"the web app needs FastAPI and uvicorn: {install_hint('web')}") from exc
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
               request_timeout: float = REQUEST_TIMEOUT, runs_dir: str | None = None) -> None:
    """Serve ``create_app(model)`` with uvicorn (one process) until interrupted; it answers to the
    names of ``host`` and ``allowed_hosts``, and drops clients slower than ``request_timeout``.
    ``runs_dir``: the folder of training runs the Runs tab shows (``nndl serve --runs``)."""
    uvicorn = _uvicorn()
    _limit_blas(blas_threads)
    app = create_app(model, model_name=model_name, allowed_hosts=allowed_hosts_for(host, allowed_hosts),
                     runs_dir=runs_dir)
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
                allowed_hosts: tuple[str, ...] = (), request_timeout: float = REQUEST_TIMEOUT,
                runs_dir: str | None = None) -> None:
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
                                                       request_timeout, runs_dir),
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
            allowed_hosts: list[str] | None = None, request_timeout: float = REQUEST_TIMEOUT,
            runs_dir: str | None = None) -> None:
    """One server process of ``run_workers``: load the model, serve on the socket it was given."""
    from ..models.default import load_model

    uvicorn = _uvicorn()
    _limit_blas(blas_threads)
    app = create_app(load_model(model_path), model_name=model_name, allowed_hosts=allowed_hosts, runs_dir=runs_dir)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, http=deadline_protocol(request_timeout))
    uvicorn.Server(config).run(sockets=[sock])
