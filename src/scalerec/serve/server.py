"""Running the ASGI app under Uvicorn with the settings the serving benchmark was measured with.

Each option removes per-request work that a recommendation API does not need: the proxy-headers
middleware (no reverse proxy rewrites client addresses here), the `server` and `date` response
headers, and the access log. httptools and uvloop are asked for by name so a missing extra fails
at start-up instead of silently serving on the slower pure-Python stack.
"""

from __future__ import annotations

import sys
from typing import Any

SWITCH_INTERVAL_S = 0.001
"""GIL hand-over interval while serving. The search thread needs the GIL back after each FAISS
call; with CPython's default 5 ms it can wait that long behind the event loop, which is most of
a 10 ms latency budget."""


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (host and port aside)."""
    loop = "uvloop" if sys.platform != "win32" else "asyncio"
    return {
        "http": "httptools",
        "loop": loop,
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "date_header": False,
    }


def serve(app: Any, host: str, port: int, switch_interval_s: float = SWITCH_INTERVAL_S) -> None:
    """Serve `app` (from `create_app`) on host:port until interrupted (sets the process's GIL
    switch interval to `switch_interval_s`)."""
    import uvicorn

    sys.setswitchinterval(switch_interval_s)
    uvicorn.run(app, host=host, port=port, **uvicorn_options())
