"""Docs that run as written (issue 20). Every code block of the docs runs as a test of its own
(tests/docs_runner.py, collected through the root conftest.py); the tests here pin down each thing
the docs once got wrong, and the runner's own rules."""
from __future__ import annotations

import builtins
import glob
import json
import os
import re
import shlex
import socket
import subprocess
import symtable
import sys
import time
import urllib.request

import numpy as np
import pytest

import nndl
from nndl import experiment
from nndl.cli import main as nndl_main
from tests.docs_runner import CONTINUES, ROOT, check_commands, docs_sybil

DOCS = ["README.md", "docs/GUIDE.md", "docs/CLUSTER.md", "benchmarks/README.md"]
# Files that other work in progress still owns; their hints are listed in issue 20's report.
NOT_YET = {"docs/RESULTS.md"}          # the record of past runs keeps the commands as they were run


def blocks(doc: str, language: str | None = None) -> list:
    document = docs_sybil().parse(ROOT / doc)
    found = [example.parsed for example in document.examples()]
    return [b for b in found if language is None or b.language == language]


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


# ----- 1. Python blocks are whole, or say what they continue --------------------------------------
def free_names(source: str) -> set[str]:
    """Names a block reads but never binds (imports, assignments, loops, defs), nor are builtins."""
    table = symtable.symtable(source, "block", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used: set[str] = set()

    def walk(t) -> None:
        for s in t.get_symbols():
            if s.is_referenced() and (t is table or s.is_global()):
                used.add(s.get_name())
        for child in t.get_children():
            walk(child)

    walk(table)
    return used - bound - set(dir(builtins))


@pytest.mark.parametrize("doc", DOCS)
def test_every_python_block_defines_the_names_it_uses(doc):
    for block in blocks(doc, "python"):
        if block.source.lstrip().startswith(CONTINUES):
            continue
        assert not free_names(block.source), f"{doc}:{block.line} uses {free_names(block.source)} without defining them"


def test_free_names_finds_what_a_pasted_block_would_lack():
    assert free_names("net.fit(training)\n") == {"net", "training"}
    assert free_names("import nndl\nx = nndl.data.load_mnist()\nprint(len(x))\n") == set()


# ----- 2. install hints name what exists ---------------------------------------------------------
def test_install_hints_say_how_to_install_from_the_checkout():
    from nndl import executors
    from nndl.errors import install_hint

    extras = _pyproject()["project"]["optional-dependencies"]
    for extra in extras:
        assert install_hint(extra).startswith(f"pip install -e '.[{extra}]' in the nndl checkout")
    assert executors.DIST_HINT == install_hint("dist")
    assert "'dask[distributed]" in install_hint("dist") and "'torch==2.13.0'" in install_hint("bench")


def test_the_gpu_message_says_how_to_get_cupy(monkeypatch):
    from nndl import backend
    from nndl.errors import install_hint

    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(ImportError, match=re.escape(install_hint("gpu"))):
        backend.cupy_module()


def test_no_doc_or_message_tells_to_install_nndl_from_the_index():
    files = [*DOCS, *glob.glob("src/nndl/**/*.py", root_dir=ROOT, recursive=True),
             *glob.glob("benchmarks/*.py", root_dir=ROOT)]
    bad = []
    for name in sorted(set(files) - NOT_YET):
        for k, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"pip install '?nndl(?:\[|'|\s|`|$)", line):     # by name, from the index
                bad.append(f"{name}:{k}: {line.strip()}")
    assert not bad, "\n".join(bad)


# ----- 3. the README's plot command finds what reproduce writes -----------------------------------
def test_readme_plot_command_finds_what_reproduce_writes(tmp_path, monkeypatch):
    from nndl.recipes.reproduce import reproduce

    tour = "\n".join(b.source for b in blocks("README.md", "bash"))
    plot = next(line for line in tour.splitlines() if line.startswith("nndl plot metrics"))
    patterns = [w for w in shlex.split(plot, comments=True) if w.endswith(".jsonl")]
    assert patterns and "nndl reproduce ch3-l2-30 --seeds 3" in tour
    reproduce(["ch3-l2-30"], seeds=2, out=str(tmp_path / "runs" / "reproduce"),
              overrides={"epochs": 1, "train_size": 200}, verbose=False)
    monkeypatch.chdir(tmp_path)
    assert sorted(f for p in patterns for f in glob.glob(p)) == [
        "runs/reproduce/ch3-l2-30/seed0.jsonl", "runs/reproduce/ch3-l2-30/seed1.jsonl"]


# ----- 4 and 7. the README's rows say their command, their rule and their seeds --------------------
def _row(prefix: str) -> str:
    return next(line for line in readme().splitlines() if line.startswith(f"| {prefix}"))


def test_readme_ch1_100_row_gives_every_seed_and_why_some_get_stuck():
    row = _row("ch1-100")
    assert "`nndl reproduce ch1-100 --seeds 3`" in row
    best = float(re.search(r"\| ([\d.]+)% \(seeds", row).group(1))
    seeds = [float(s) for s in re.search(r"seeds ([\d. /]+):", row).group(1).split(" / ")]
    assert len(seeds) == 3 and best == max(seeds)
    assert "stuck" in row and "N(0, 1)" in row and "saturate" in row


def test_readme_rnn_row_names_its_command_and_rule():
    row = _row("rnn-seq-mnist")
    assert "`nndl reproduce rnn-seq-mnist`" in row and "`nndl rnn seq-mnist`" in row and "best epoch" in row


def test_rnn_seq_mnist_and_reproduce_report_one_number_by_one_rule(tmp_path, capsys):
    from nndl.recipes.reproduce import reproduce

    assert nndl_main(["rnn", "seq-mnist", "--epochs", "2", "--train-size", "300", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    row = reproduce(["rnn-seq-mnist"], out=str(tmp_path), overrides={"epochs": 2, "train_size": 300},
                    verbose=False)[0]
    assert cli["test_accuracy"] == row["measured_best"]            # the same run, the same rule
    with open(tmp_path / "rnn-seq-mnist" / "seed0.jsonl") as f:         # its metrics, epoch by epoch
        per_epoch = [json.loads(line)["evaluation_accuracy"] for line in f]
    assert cli["test_accuracy"] == max(per_epoch) and cli["final_test_accuracy"] == per_epoch[-1]
    assert cli["epochs"] == 2 and cli["best_epoch"] in (0, 1) and "best test accuracy" in cli["rule"]


# ----- 5. no placeholders; the example inputs ship -----------------------------------------------
PLACEHOLDERS = ["a.npz b.npz c.npz", "mytext.txt", "my_digit.png", "my_number.png", "nndl sweep ...", "[...]",
                "/shared/ensemble", "/path/to/"]


@pytest.mark.parametrize("doc", DOCS)
def test_no_block_holds_a_placeholder_that_looks_runnable(doc):
    for block in blocks(doc):
        for placeholder in PLACEHOLDERS:
            assert placeholder not in block.source, f"{doc}:{block.line}: {placeholder!r}"


def test_the_example_inputs_the_docs_name_ship_with_the_checkout():
    named = set()
    for doc in DOCS:
        named |= set(re.findall(r"examples/[\w.]+\.(?:png|txt|py)", (ROOT / doc).read_text(encoding="utf-8")))
    assert {"examples/digit_7.png", "examples/number_1905.png", "examples/sonnets.txt"} <= named
    for name in named:
        assert (ROOT / name).is_file(), name


def test_the_example_pictures_are_what_make_examples_draws(tmp_path):
    from PIL import Image

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import make_examples
    finally:
        sys.path.pop(0)
    for path in make_examples.make(str(tmp_path)):
        name = os.path.basename(path)
        made = np.asarray(Image.open(path), dtype=np.int16)
        shipped = np.asarray(Image.open(ROOT / "examples" / name), dtype=np.int16)
        assert made.shape == shipped.shape, name                 # another Pillow may resize a grey level apart
        assert np.abs(made - shipped).max() <= 16 and np.abs(made - shipped).mean() < 1, name


@pytest.mark.parametrize("name, digit", [("digit_7.png", "7"), ("digit_2.png", "2"), ("digit_1.png", "1")])
def test_the_example_digits_read_as_their_labels(name, digit, capsys):
    assert nndl_main(["predict", str(ROOT / "examples" / name)]) == 0
    assert capsys.readouterr().out.split(":")[1].split()[0] == digit


# ----- 6. the bench extra brings PyTorch; without it the benchmarks say so -------------------------
def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_bench_extra_is_pytorch_cpu_and_dev_has_sybil():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert extras["bench"] == ["torch==2.13.0"]
    assert any(r.startswith("sybil") for r in extras["dev"])


def test_without_pytorch_the_benchmark_says_how_to_get_its_columns(monkeypatch, capsys):
    import importlib.util

    monkeypatch.setitem(sys.modules, "torch", None)          # as if PyTorch were not installed
    spec = importlib.util.spec_from_file_location("bench_conv", ROOT / "benchmarks" / "bench_conv.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--images", "50", "--batch", "10", "--repeats", "1", "--nets", "relu", "--kernels", "numpy",
                "--threads", "1"])
    out = capsys.readouterr().out
    assert "torch not installed: pip install -e '.[bench]'" in out
    assert "| — | — | — |" in out


# ----- 8. full-batch runs count iterations; reproduce's header shows the epochs it runs ------------
def test_lbfgs_reports_the_iterations_it_ran(capsys):
    assert nndl_main(["train", "--sizes", "784,10,10", "--cost", "cross-entropy", "--optimizer", "lbfgs",
                      "--epochs", "25", "--train-size", "300"]) == 0
    out = capsys.readouterr().out
    header, *lines = out.strip().splitlines()
    assert "eta=" not in header and "m=" not in header and "at most 25 iterations" in header
    assert [line.split(":")[0] for line in lines[:-1]] == ["Iteration 10", "Iteration 20", "Iteration 25"]
    summary = json.loads(lines[-1])
    assert summary["epochs_run"] == 25 and summary["best_test_epoch"] in (10, 20, 25)


def test_full_batch_records_the_iteration_it_converged_at():
    from nndl.train.fullbatch import fit_full_batch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = nndl.Network([nndl.Dense(3, 2, "softmax")], cost="log-likelihood", seed=0)
    history = fit_full_batch(net, (x, y), method="lbfgs", iterations=500, lmbda=1.0, evaluation_data=(x, y))
    ran = history.result["iterations"]
    assert ran < 500 and history.records[-1]["iteration"] == ran        # converged early, recorded there
    assert experiment.summarize(history, nndl.settings.settings_from({"optimizer": "lbfgs"}), 0, 1.0)[
        "epochs_run"] == ran


def test_reproduce_header_shows_the_overridden_epochs(tmp_path, capsys):
    from nndl.recipes.reproduce import reproduce

    reproduce(["ch6-shallow"], out=str(tmp_path), overrides={"epochs": 1, "train_size": 100}, verbose=True)
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("== ch6-shallow"))
    assert "1 epoch (--epochs 1; the recipe: 60)" in header and "60 epochs" not in header
    assert "--train-size 100" in header


# ----- 9. the benchmark scripts run from any folder ----------------------------------------------
@pytest.mark.parametrize("script", ["bench_mlp", "bench_gpu", "bench_conv", "bench_sweep"])
def test_benchmark_scripts_start_from_any_folder(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": ""}
    by_path = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--help"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert by_path.returncode == 0, by_path.stderr
    as_module = subprocess.run([sys.executable, "-m", f"benchmarks.{script}", "--help"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
    assert as_module.returncode == 0, as_module.stderr


def test_the_guide_gives_nndl_data_as_an_absolute_path():
    intro = (ROOT / "docs/GUIDE.md").read_text(encoding="utf-8").split("## 0.")[0]
    assert 'export NNDL_DATA="$(cd ../shared && pwd)"' in intro and "export NNDL_DATA=../shared" not in intro


# ----- 10. the README's example line is what its first command prints ----------------------------
def test_readme_epoch_line_is_what_the_first_command_prints(monkeypatch, capsys):
    monkeypatch.delenv("NNDL_DOCS_QUICK", raising=False)
    quoted = re.search(r"`(Epoch 3: (\d+) / 10000  \(\d+\.\d\d s\))`", readme())
    assert quoted, "README should quote the line in the form the command prints it"
    first = blocks("README.md", "bash")[0].source.splitlines()[0]
    args = shlex.split(first.split("nndl train", 1)[1])
    assert nndl_main(["train", *args, "--epochs", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    line = next(x for x in lines if x.startswith("Epoch 3:"))
    assert re.fullmatch(r"Epoch 3: \d+ / 10000  \(\d+\.\d\d s\)", line)
    # The run is seeded, but float32 rounds differently on other CPUs (CI's printed 9320 where this
    # README's machine printed 9305), so the quoted count holds to within 1% of the test images.
    assert abs(int(line.split()[2]) - int(quoted.group(2))) <= 100, (line, quoted.group(1))


# ----- nndl serve, which the docs cannot run: it starts and answers /api/health --------------------
def test_the_documented_serve_command_starts_and_answers_health(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    server = subprocess.Popen(["nndl", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert health is not None, f"nndl serve did not answer (exit {server.poll()})"
    finally:
        server.terminate()
        server.wait(timeout=30)


# ----- the quick mode the docs run under ---------------------------------------------------------
def test_docs_quick_cuts_every_run_short_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("NNDL_DOCS_QUICK", "1")
    monkeypatch.setattr(experiment, "_quick_said", False)
    settings = nndl.settings.settings_from({"sizes": [784, 10, 10], "epochs": 30, "evaluate_on": "validation"})
    result = experiment.run(settings, 0)
    assert result["epochs_run"] == experiment.QUICK_EPOCHS == 2
    assert all(r["evaluation_size"] == experiment.QUICK_IMAGES for r in result["history"])
    assert "NNDL_DOCS_QUICK is set" in capsys.readouterr().err
    training, validation, test = experiment.load_data(settings)
    assert len(training[1]) == len(validation[1]) == len(test[1]) == 1000
    monkeypatch.setenv("NNDL_DOCS_QUICK", "0")
    assert not experiment.docs_quick() and experiment.run_epochs(settings) == 30


# ----- the runner: a failing block fails the run; skipped blocks are still parsed ----------------
FAILING_DOC = '''# A document

```bash
true
false
```

```python
import os
print(os.getcwd())
```

```python
# continues the block above
print(os)
```

```python
print(undefined_name)
```

<!-- docs: skip "a reason shown" -->
```bash
nndl train --no-such-flag 3
```

<!-- docs: skip "another reason" -->
```bash
nndl train --epochs 3 && python benchmarks/bench_mlp.py --repeats 1
```
'''


def test_a_failing_block_fails_the_run_and_names_its_line(tmp_path):
    (tmp_path / "README.md").write_text(FAILING_DOC)
    (tmp_path / "conftest.py").write_text("from tests.docs_runner import docs_sybil\n"
                                          "pytest_collect_file = docs_sybil(__import__('pathlib').Path(__file__)"
                                          ".parent, ['README.md']).pytest()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "README.md"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "3 failed, 2 passed, 1 skipped" in out, out
    assert "README.md:5" in out                                    # the failing line of the bash block
    assert "NameError: name 'undefined_name' is not defined" in out
    assert "unrecognized arguments: --no-such-flag 3" in out       # a skipped block is still parsed
    assert "another reason" in out


def test_check_commands_parses_nndl_lines_and_finds_scripts(tmp_path):
    assert check_commands("nndl train --epochs 3 --eta 0.5   # a comment\n", tmp_path) == []
    assert check_commands("NNDL_DATA=x nice -n 10 nndl sweep --recipe ch3-l2-30 --epochs 10 \\\n"
                          "    --grid eta=0.1,0.5 --out runs/s\n", tmp_path) == []
    assert "--epochz 3" in check_commands("nndl train --epochz 3\n", tmp_path)[0]
    assert check_commands("python benchmarks/no_such.py\n", tmp_path)[0].endswith("no script benchmarks/no_such.py "
                                                                                  "in the checkout")
    assert check_commands("for e in 1 2; do nndl train --eta $e; done\n", tmp_path) == []   # variables: not parsed


def test_ci_runs_the_docs():
    assert {"tests", "README.md", "docs", "benchmarks/README.md"} <= set(
        _pyproject()["tool"]["pytest"]["ini_options"]["testpaths"])
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and ".venv/bin/python -m pytest -q" in ci
