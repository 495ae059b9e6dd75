"""The one dependency every page takes: who is looking, and their gateway client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from web.session import Visitor, visitor_for


def current_visitor(request: Request) -> Visitor:
    return visitor_for(request, request.app.state.http)


CurrentVisitor = Annotated[Visitor, Depends(current_visitor)]
