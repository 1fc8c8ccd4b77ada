"""An app over the Porto database, built from explicit settings like a deployment would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from data.settings import Settings


@pytest.fixture(scope="session")
def porto_client(porto_engine: Engine, porto_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=porto_url), engine=porto_engine)
    with TestClient(app) as client:
        yield client
