"""pytest at the repository root: besides tests/, every code block of the docs is a test.

The docs (README.md, docs/*.md, benchmarks/README.md) live outside tests/, and pytest asks a
folder's conftest.py to collect the files below it, so the collector of their code blocks must sit
here, above them all; ``testpaths`` in pyproject.toml names them beside tests/, so the README's
test command (``python -m pytest -q``) and .ci/run run them. What runs and how: tests/docs_runner.py
(Sybil); how to read the docs' blocks: the top of docs/GUIDE.md.
"""
try:
    from tests.docs_runner import docs_sybil
except ImportError as exc:                   # an environment from before Sybil joined the dev extra
    raise ImportError(f"the docs tests need Sybil ({exc}): pip install -e '.[dev]' in the checkout") from exc

pytest_collect_file = docs_sybil().pytest()
