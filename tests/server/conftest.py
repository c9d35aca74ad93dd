from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from modelport.protocols.rest.app import ModelportApp, ServerOptions
from modelport.serving.repository import Repository
from tests.helpers import build_repository


@pytest.fixture(scope="session")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="session")
def repository(repo_dir: Path) -> Repository:
    return Repository(str(repo_dir)).load()


def make_client(repository: Repository, **options: object) -> httpx.AsyncClient:
    app = ModelportApp(repository, ServerOptions(**options))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(repository: Repository) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(repository) as c:
        yield c
