"""FastAPI dependency: the request's one session (from app.state.sessionmaker), committed once."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.admission import live as catalog_live
from app.db.engine import session_scope


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_scope(request.app.state.sessionmaker) as session:
        # The catalogue version this transaction sees becomes the request's (admitted items included).
        await catalog_live.enter(session)
        yield session


# scope="function": commit runs when the endpoint returns, before the response is sent, so a failed
# commit becomes an error response instead of a 200 for data that was never stored.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_lazy_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session that touches the database only if used (the cached read paths, app/db/fast.py):
    the catalogue is entered by whoever uses it."""
    async with session_scope(request.app.state.sessionmaker) as session:
        yield session


LazySession = Annotated[AsyncSession, Depends(get_lazy_session, scope="function")]
