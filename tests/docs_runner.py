"""The docs runner: every ``bash`` and ``python`` block of README.md, docs/*.md and
benchmarks/README.md is a pytest item (Sybil, wired in by the repository's root ``conftest.py``),
run in order as a new user would paste it.

Why Sybil: it parses Markdown into examples with their line numbers and hands each to an evaluator
we write, so the same document can hold shell and Python blocks (pytest-markdown-docs and
pytest-examples run Python only), and each block is a pytest item named by its document and line
(``docs/GUIDE.md::line:47,column:1``), selected, skipped and reported like any other test.

The rules, which docs/GUIDE.md states for readers:

- Each document runs in its own fresh folder that looks like the checkout's root (the checkout's
  folders linked in, ``../shared`` beside it), with the virtual environment's ``bin`` first on
  PATH, ``NNDL_DATA`` set, ``NNDL_CACHE`` inside the folder, and ``NNDL_DOCS_QUICK=1``: every
  training run of nndl is then cut to at most 2 epochs on the first 1,000 images of each split
  (``nndl.experiment``), and Python blocks get the first 1,000 images of each split from
  ``nndl.data.load_mnist``. ``NNDL_DOCS_QUICK=0`` runs everything at full size (hours).
- A bash block runs under ``bash -e -o pipefail``: any failing command fails it, and the trace
  names the document line that failed.
- A python block runs in a fresh interpreter: it must be self-contained, unless its first line is
  ``# continues the block above``; then the blocks it continues run first, in the same interpreter.
- ``<!-- docs: skip "reason" -->`` on the line before a block: the block is not run (a GPU, a
  cluster, a server that never exits, a timing run of minutes). Its ``nndl`` command lines are still
  parsed by nndl's own parser and its script paths checked, so a renamed flag fails; the item is
  reported as skipped with the reason.
- Record documents (``RECORDS``: the commands behind docs/RESULTS.md's numbers, hours each) are
  checked like skipped blocks.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sybil import Region, Sybil
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "docs/*.md", "benchmarks/README.md"]
RECORDS = {"docs/RESULTS.md": "the record of the runs behind docs/RESULTS.md's numbers (hours each)",
           "docs/sweep_eta_lmbda.md": "the record of a 9-trial sweep (an hour); `nndl sweep` runs in GUIDE.md"}
LINKED = ["benchmarks", "docs", "examples", "src", "tests", "pyproject.toml", "README.md", ".venv"]
CONTINUES = "# continues the block above"
SKIP = re.compile(r'<!--\s*docs:\s*skip\s+"(?P<reason>[^"]+)"\s*-->\s*$')
TIMEOUT = float(os.environ.get("NNDL_DOCS_TIMEOUT", "900"))      # seconds per block
# NNDL_DOCS_VERBOSE=1 prints each block's output (pytest -s shows it); NNDL_DOCS_KEEP=1 keeps the folders.

# Run in a fresh interpreter before a Python block: the quick mode's data, then the block itself,
# compiled with the document's name and line numbers (tracebacks point into the document).
PYTHON_RUNNER = r'''
import os, sys
if os.environ.get("NNDL_DOCS_QUICK", "") not in ("", "0"):
    import nndl.data, nndl.data.datasets
    from nndl.experiment import QUICK_IMAGES
    _load_mnist = nndl.data.datasets.load_mnist
    def load_mnist(*args, **kwargs):
        return tuple((x[:QUICK_IMAGES], y[:QUICK_IMAGES]) for x, y in _load_mnist(*args, **kwargs))
    nndl.data.load_mnist = nndl.data.datasets.load_mnist = load_mnist
    print(f"docs runner: NNDL_DOCS_QUICK is set: load_mnist gives the first {QUICK_IMAGES:,} images of each split",
          file=sys.stderr)
document, path = sys.argv[1:3]
sys.argv = [document]
with open(path, encoding="utf-8") as f:
    exec(compile(f.read(), document, "exec"), {"__name__": "__main__"})
'''


class Block:
    """One fenced block: its language, source, first line in the document, and skip reason."""

    def __init__(self, language: str, source: str, line: int, skip: str | None):
        self.language, self.source, self.line, self.skip = language, source, line, skip

    def __repr__(self) -> str:
        return f"<{self.language} block at line {self.line}{', skipped' if self.skip else ''}>"


class BlockParser:
    """Regions for the ``bash`` and ``python`` fences of a document (indented ones too), each with
    the skip directive on the line before it, bound at parse time so that running one block alone
    (``pytest -k``) still honours it."""

    def __init__(self):
        self.lexer = FencedCodeBlockLexer(language=r"bash|python", mapping={"language": "language",
                                                                              "source": "source"})

    def __call__(self, document):
        record = _relative(document.path) in RECORDS
        for lexed in self.lexer(document):
            before = document.text[:lexed.start].rstrip("\n ").rsplit("\n", 1)[-1]
            skip = SKIP.match(before.strip())
            reason = RECORDS[_relative(document.path)] if record else skip and skip.group("reason")
            line = document.text.count("\n", 0, lexed.start) + 2       # the block's first line (1-based)
            block = Block(lexed.lexemes["language"], str(lexed.lexemes["source"]), line, reason)
            yield Region(lexed.start, lexed.end, block, evaluate)


def _relative(path) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return Path(path).name


# ----- the work folder of a document -----------------------------------------------------------
def setup(namespace: dict) -> None:
    """A fresh folder that looks like the checkout's root, and the environment blocks run in."""
    base = Path(tempfile.mkdtemp(prefix="nndl-docs-"))
    work = base / "nndl"
    work.mkdir()
    for name in LINKED:
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    data = os.environ.get("NNDL_DATA") or str(ROOT.parent / "shared")
    if Path(data).is_dir():
        (base / "shared").symlink_to(Path(data).resolve())
    env = dict(os.environ)
    env.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               NNDL_DATA=str(Path(data).resolve()), NNDL_CACHE=str(work / ".cache"),
               NNDL_DOCS_QUICK=env.get("NNDL_DOCS_QUICK", "1"), MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("VIRTUAL_ENV", None)
    namespace.update(base=base, work=work, env=env, chain=[])


def teardown(namespace: dict) -> None:
    if os.environ.get("NNDL_DOCS_KEEP") != "1":
        shutil.rmtree(namespace["base"], ignore_errors=True)


# ----- running a block -------------------------------------------------------------------------
def evaluate(example) -> str | None:
    """Run one block; a failure comes back as the text Sybil reports (no traceback of this runner)."""
    block: Block = example.parsed
    ns = example.namespace
    document = _relative(example.path)
    if block.skip:
        problems = check_commands(block.source, ns["work"]) if block.language == "bash" else []
        if problems:
            return f"{document}:{block.line}: a skipped block's commands do not parse:\n" + "\n".join(problems)
        ns["chain"] = []
        raise pytest.skip.Exception(block.skip, _use_item_location=True)   # reported at the block's line
    return (run_bash if block.language == "bash" else run_python)(block, document, ns)


def run_bash(block: Block, document: str, ns: dict) -> str | None:
    header = f"set -eo pipefail\nPS4='+ {document}:$((LINENO + {block.line - 4})) [${{SECONDS}} s]: '\nset -x\n"
    return _run(["bash", "-c", header + block.source], block, document, ns)


def run_python(block: Block, document: str, ns: dict) -> str | None:
    chain = ns["chain"] + [block] if block.source.lstrip().startswith(CONTINUES) else [block]
    if len(chain) > 1 and not ns["chain"]:
        return f"{document}:{block.line}: says it continues the block above, but no Python block ran before it"
    ns["chain"] = chain
    text = ""
    for part in chain:                      # each block at its own lines, so tracebacks name them
        text += "\n" * (part.line - 1 - text.count("\n")) + part.source
    script = ns["work"] / ".docs" / f"{Path(document).name}-{block.line}.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(text, encoding="utf-8")
    return _run([sys.executable, "-c", PYTHON_RUNNER, document, str(script)], block, document, ns)


def _run(command: list[str], block: Block, document: str, ns: dict) -> str | None:
    try:
        done = subprocess.run(command, cwd=ns["work"], env=ns["env"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace")
        return f"{document}:{block.line}: still running after {TIMEOUT:.0f} s\n{output[-4000:]}"
    output = done.stdout.decode(errors="replace")
    if os.environ.get("NNDL_DOCS_VERBOSE") == "1":          # see it with pytest -s
        print(f"----- {document}:{block.line}\n{output}")
    if done.returncode:
        where = re.findall(r"^\+ (\S+:\d+) \[", output, re.MULTILINE)      # the trace's last command
        at = where[-1] if where else f"{document}:{block.line}"
        return f"{at}: the {block.language} block failed (exit {done.returncode})\n{output[-6000:]}"
    return None


# ----- checking the commands of a block that is not run ----------------------------------------
def check_commands(source: str, work: Path) -> list[str]:
    """Problems with the commands of a bash block that is not run: each ``nndl`` command is parsed
    by nndl's own parser, each ``python SCRIPT.py`` must name a script of the checkout."""
    problems = []
    for command in commands(source):
        if any("$" in word for word in command):
            continue                          # a shell variable: only a run would tell
        words = _drop_prefixes(command)
        if not words:
            continue
        if Path(words[0]).name == "nndl":
            error = parse_nndl(words[1:])
            if error:
                problems.append(f"  {shlex.join(words)}\n    {error}")
        elif Path(words[0]).name.startswith("python") and len(words) > 1 and words[1].endswith(".py"):
            if not (work / words[1]).is_file() and not (ROOT / words[1]).is_file():
                problems.append(f"  {shlex.join(words)}\n    no script {words[1]} in the checkout")
    return problems


def commands(source: str) -> list[list[str]]:
    """The simple commands of a shell text: continuations joined, comments dropped, split at
    ``&&``, ``||``, ``;``, ``&`` and ``|``."""
    out: list[list[str]] = []
    for line in source.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:                    # an unbalanced quote: only a run would tell
            continue
        current: list[str] = []
        for token in tokens:
            if set(token) <= set(";&|"):
                out.append(current)
                current = []
            else:
                current.append(token)
        out.append(current)
    return [c for c in out if c]


def _drop_prefixes(words: list[str]) -> list[str]:
    """The command behind ``VAR=value``, ``nice [-n N]``, ``timeout [-s SIG] N``, ``sudo``."""
    words = list(words)
    while words:
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in ("sudo", "do", "then", "else", "time"):
            words = words[1:]
        elif words[0] == "nice":
            words = words[3:] if len(words) > 2 and words[1] == "-n" else words[1:]
        elif words[0] == "timeout":
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] in ("-s", "-k") else words[1:]
            words = words[1:]                 # the duration
        else:
            break
    return words


def parse_nndl(argv: list[str]) -> str | None:
    """None if nndl's parser accepts ``argv``; else its message."""
    from nndl.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip() or f"exit {exc.code}"
    return None


def docs_sybil(path: str | Path = ROOT, patterns=DOCUMENTS) -> Sybil:
    """The Sybil of the docs under ``path`` (the checkout by default)."""
    sybil = Sybil(parsers=[BlockParser()], patterns=list(patterns), setup=setup, teardown=teardown)
    sybil.path = Path(path).resolve()
    return sybil
