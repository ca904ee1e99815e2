"""The web UI: one static page (``static/index.html`` + ``app.js`` + ``style.css``) that the control
plane serves at ``/ui``.

It holds no data and no server code: the page signs in with the session cookie, sends the CSRF token
on writes and calls the same ``/api/v1`` routes as the CLI and :class:`largeforge.clients.PlatformClient`.
No build step and no third-party scripts, so it works offline and ships inside the wheel.
"""

STATIC_PACKAGE = ("largeforge.web", "static")
"""Where the assets live, as ``StaticFiles(packages=[STATIC_PACKAGE])`` expects it."""

__all__ = ["STATIC_PACKAGE"]
