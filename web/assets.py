"""Static files under names that carry their content's hash, cached for a year.

`guichet.css` is linked as `/static/guichet.3f9a1c2b7d.css`: a new version is a new name, so a
browser may keep each one forever (`Cache-Control: immutable`) and never asks again, yet sees a
change at once. The plain name still answers (old pages, tools), revalidated on each use.

Hand-written (about forty lines): Starlette's StaticFiles serves files but has no manifest of
hashed names, and a build step (webpack, Vite) would add a toolchain for seven files
(docs/decisions.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class HashedStatic(StaticFiles):
    """Serves `name.<hash>.ext` as `name.ext` with a year's cache; `url(name)` gives the link."""

    def __init__(self, directory: Path, prefix: str = "/static") -> None:
        super().__init__(directory=directory)
        self.prefix = prefix
        self.hashed: dict[str, str] = {}  # plain name → hashed name
        self.plain: dict[str, str] = {}  # hashed name → plain name
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                name = path.relative_to(directory).as_posix()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
                stem, dot, suffix = name.rpartition(".")
                hashed = f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"
                self.hashed[name] = hashed
                self.plain[hashed] = name

    def url(self, name: str) -> str:
        """The link to a static file: its hashed name (a name that is not there fails loudly)."""
        return f"{self.prefix}/{self.hashed[name]}"

    async def get_response(self, path: str, scope: Scope) -> Response:
        plain = self.plain.get(path)
        response = await super().get_response(plain or path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = FOREVER if plain else REVALIDATE
        return response
