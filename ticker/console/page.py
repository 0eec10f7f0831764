"""``GET /editor``: the console page, its script and stylesheet (plain files, no build step).

The page is served with a strict Content-Security-Policy: scripts, styles and connections
only from this origin, no inline script, no framing. A notification's image in the preview
may come from anywhere over https, as it would on a phone.
"""

from __future__ import annotations

from aiohttp import web

from ticker.web.pages import static_text

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
       "connect-src 'self' {ws}; worker-src 'self'; manifest-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin"}


def csp(request: web.Request) -> str:
    # 'self' covers ws: in CSP Level 3 browsers; naming the socket's origin covers the rest.
    scheme = "wss" if request.scheme == "https" else "ws"
    return CSP.format(ws=f"{scheme}://{request.host} wss://{request.host}")


async def editor_page(request: web.Request) -> web.Response:
    return web.Response(text=static_text("editor/index.html"), content_type="text/html",
                        charset="utf-8", headers={**_HEADERS, "X-Frame-Options": "DENY",
                                                  "Content-Security-Policy": csp(request)})


async def editor_js(request: web.Request) -> web.Response:
    return web.Response(text=static_text("editor/editor.js"), content_type="text/javascript",
                        charset="utf-8", headers=_HEADERS)


async def editor_css(request: web.Request) -> web.Response:
    return web.Response(text=static_text("editor/editor.css"), content_type="text/css",
                        charset="utf-8", headers=_HEADERS)


def setup(app: web.Application) -> None:
    app.router.add_get("/editor", editor_page)
    app.router.add_get("/editor/editor.js", editor_js)
    app.router.add_get("/editor/editor.css", editor_css)
