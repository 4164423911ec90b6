"""Repository-level test setup (the plugin itself registers through its pytest11 entry point).

pytester is enabled in pyproject's addopts rather than with ``pytest_plugins`` here, because
an editable install makes this directory a parent of the built-in scenarios, and pytest
refuses ``pytest_plugins`` in a conftest that is not at the rootdir.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests of option resolution must not see the developer's own PGDR_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("PGDR_"):
            monkeypatch.delenv(name)
