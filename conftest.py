"""Root conftest: this repository's own runs use the installed plugin (entry point `pytest11`).

When the package is not installed (a bare checkout on PYTHONPATH), load the plugin explicitly.
"""

from importlib.metadata import PackageNotFoundError, distribution

try:
    distribution("kazoo-harness")
except PackageNotFoundError:  # pragma: no cover - only without `pip install -e .`
    pytest_plugins = ["harness.pytest_plugin"]
