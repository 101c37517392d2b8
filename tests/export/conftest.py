import pytest

from tests.export.release_fixtures import Release, shared_release


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    return shared_release(tmp_path_factory)
