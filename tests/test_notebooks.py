"""Every notebook in docs/notebooks runs top to bottom without an error, at small sizes.

The notebooks are Jupytext percent-format ``.py`` files (diff-friendly; ``jupytext --to ipynb``
makes the ``.ipynb``). Each is converted in memory and executed cell by cell in a fresh Jupyter
kernel (nbclient), with ``NNDL_NOTEBOOK_QUICK=1``: subsets of MNIST and few epochs, each notebook
well under a minute. Any cell that raises fails the test, and the notebooks assert what they show
(the adder adds, the gradient check passes, the networks learn). The ``[notebooks]`` extra has what
they need; ``[dev]`` has what this test needs.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "docs" / "notebooks"
NOTEBOOKS = sorted(p for p in FOLDER.glob("*.py") if not p.name.startswith("_"))
PARTS = {"ch1_perceptrons", "ch2_backprop", "ch3_improving", "ch6_deep", "rnn"}


def _tools():
    try:
        import jupytext
        import nbclient
    except ImportError as exc:
        from nndl.errors import install_hint

        pytest.fail(f"the notebook tests need jupytext, nbclient and ipykernel ({exc}): {install_hint('dev')}")
    return jupytext, nbclient


def test_there_is_a_notebook_for_each_part_and_the_readme_links_each():
    assert {p.stem for p in NOTEBOOKS} == PARTS
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"(docs/notebooks/{path.name})" in readme, f"README.md does not link {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_is_percent_format_and_explains_what_to_look_for(path):
    jupytext, _ = _tools()
    notebook = jupytext.read(path)
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert markdown.startswith("# ") and len(code) >= 4
    assert markdown.count("What to look for") >= 3
    assert "the book" in markdown.lower() and re.search(r"\d[\d,.]*%?", markdown), "no book's number beside ours"
    assert not any(c.get("outputs") for c in code)        # stored without outputs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_without_an_error_at_quick_size(path, monkeypatch):
    jupytext, nbclient = _tools()
    monkeypatch.setenv("NNDL_NOTEBOOK_QUICK", "1")        # the kernel inherits the environment
    if os.environ.get("NNDL_DATA"):     # the kernel runs in docs/notebooks: a relative folder would move
        monkeypatch.setenv("NNDL_DATA", os.path.abspath(os.environ["NNDL_DATA"]))
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(FOLDER)}})
    client.execute()                                     # raises CellExecutionError on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "NNDL_NOTEBOOK_QUICK is set" in text
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 1, "the notebook drew no figure"
