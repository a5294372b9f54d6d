"""Small pieces every report section writes: escaped text, inlined PNG figures."""

from __future__ import annotations

import base64
import html
from pathlib import Path


def esc(x: object) -> str:
    """``x`` as HTML-escaped text."""
    return html.escape(str(x))


def img(path: Path | None, alt: str, missing: str = "") -> str:
    """The PNG at ``path`` inlined as a data URI (the page stays self-contained); ``missing``
    when the figure was not drawn."""
    if path is None or not path.is_file():
        return missing
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<img alt="{esc(alt)}" data-name="{esc(path.name)}" '
            f'src="data:image/png;base64,{data}">')
