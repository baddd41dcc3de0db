"""kiku's explorer: a web UI over one run, and the same UI as a self-contained HTML file.

>>> from kiku.web import serve, create_app, export_html   # doctest: +SKIP
"""

from kiku.web.data import RunData
from kiku.web.export import export_html, render_export
from kiku.web.server import create_app, running_server, serve

__all__ = ["RunData", "create_app", "export_html", "render_export", "running_server", "serve"]
