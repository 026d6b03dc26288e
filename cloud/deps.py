"""The services a cloud process is built from, stored on ``app.state`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import CloudConfig
from cloud.db.session import make_engine, migrate, session_factory
from cloud.services.ca import Issuer, load_issuer
from cloud.services.registry import KeyCache
from edge.contracts.errors import DockgateError, ErrorCode


@dataclass
class Services:
    config: CloudConfig
    engine: Engine
    sessions: sessionmaker[Session]
    issuer: Issuer | None = None
    keys: KeyCache = field(default_factory=KeyCache)
    read_engine: Engine | None = None
    readers: sessionmaker[Session] | None = None

    @classmethod
    def from_config(cls, config: CloudConfig, run_migrations: bool = True) -> Services:
        engine = make_engine(config.database_url)
        if run_migrations:
            migrate(engine)
        issuer = None
        if (config.issuing_dir / "issuing.key").exists():
            issuer = load_issuer(config.issuing_dir)
        svc = cls(config, engine, session_factory(engine), issuer)
        if engine.dialect.name == "sqlite":
            svc.read_engine = make_engine(config.database_url, read_only=True)
            svc.readers = session_factory(svc.read_engine)
        return svc

    def reader(self) -> Session:
        """A session for reads only (on SQLite it takes no write lock)."""
        return (self.readers or self.sessions)()

    def require_issuer(self) -> Issuer:
        if self.issuer is None:
            raise DockgateError(
                ErrorCode.CONFIG_INVALID, "no issuing CA configured: run 'dockgate cloud ca init'"
            )
        return self.issuer

    def close(self) -> None:
        self.engine.dispose()
        if self.read_engine is not None:
            self.read_engine.dispose()


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def authorization(request: Request) -> str | None:
    """The raw ``Authorization`` header (checked by ``cloud.auth``, which knows the schemes)."""
    return request.headers.get("authorization")


Svc = Annotated[Services, Depends(services)]
AuthHeader = Annotated[str | None, Depends(authorization)]
