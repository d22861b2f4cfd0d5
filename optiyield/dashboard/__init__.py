"""The live dashboard: ``optiyield serve OUT`` and ``optiyield run … --serve`` (docs/dashboard.md).

A local web page that follows a running or finished run from its output folder (read-only): yield with its
interval per iteration, each spec's margin, the current design against its bounds, cost per step and failed
simulations, updated while the run goes on; when the run ends, the page becomes the full HTML report.
Built on Dash (Flask, Plotly.js served from the installed package, no CDN); optional extra ``dashboard``.
It binds to 127.0.0.1 unless a host is given explicitly.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from optiyield.spec import Spec

#: What to install when the dashboard's packages are missing.
INSTALL_HINT = "pip install 'optiyield[dashboard]'"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


class DashboardUnavailable(RuntimeError):
    """Dash (the optional extra ``dashboard``) is not installed, or the address cannot be bound."""


@dataclass
class Dashboard:
    """A dashboard served from a background thread: ``url`` to open, :meth:`stop` to end it."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        """Stop serving (the thread ends)."""
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()

    def __repr__(self) -> str:
        return f"<optiyield dashboard at {self.url}>"


def _server(folder: str | Path, spec: Spec | None, host: str, port: int, poll_ms: int | None) -> BaseWSGIServer:
    try:
        from werkzeug.serving import make_server

        from optiyield.dashboard.app import POLL_MS, make_app
    except ImportError as exc:
        raise DashboardUnavailable(f"the dashboard needs Dash ({exc.name} is missing): {INSTALL_HINT}") from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the user's terminal
    app = make_app(folder, spec, poll_ms or POLL_MS)
    _check_address(host, port)
    try:
        return make_server(host, port, app.server, threaded=True)
    except (OSError, SystemExit) as exc:  # werkzeug exits on a taken address after the check above (a race)
        raise DashboardUnavailable(f"cannot serve on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None


def _check_address(host: str, port: int) -> None:
    """Raise DashboardUnavailable when ``host:port`` cannot be bound (werkzeug would print and exit instead)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DashboardUnavailable(f"cannot serve on {host}:{port}: {exc.strerror or exc} (choose another "
                                       "--port)") from None


def _url(server: BaseWSGIServer, host: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return f"http://{shown}:{server.server_port}/"


def start(folder: str | Path, spec: Spec | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          poll_ms: int | None = None) -> Dashboard:
    """Serve the dashboard of ``folder`` from a background (daemon) thread; ``port=0`` picks a free port.

    ``spec`` (a loaded spec) is used for bounds and margins; without it the spec file named in the folder is
    loaded. Raises :class:`DashboardUnavailable` when Dash is missing or the address is taken.
    """
    server = _server(folder, spec, host, port, poll_ms)
    thread = threading.Thread(target=server.serve_forever, name="optiyield-dashboard", daemon=True)
    thread.start()
    return Dashboard(_url(server, host), server, thread)


def serve(folder: str | Path, spec: Spec | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          poll_ms: int | None = None, ready: Any = None) -> None:
    """Serve the dashboard of ``folder`` until interrupted (Ctrl-C); ``ready(url)`` is called once it listens."""
    server = _server(folder, spec, host, port, poll_ms)
    if ready is not None:
        ready(_url(server, host))
    try:
        server.serve_forever()
    finally:
        server.server_close()
