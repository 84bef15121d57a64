"""Hostile files under a hard memory limit (issue 15): each is refused with nndl's own error in a
process that may allocate only 256 MiB more than it holds after importing nndl (RLIMIT_AS), so a
reader that followed the file's claims would die of MemoryError instead."""
from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import nndl
from nndl.models.io import META_KEY

LIMITED = """
import resource, sys
import nndl
from nndl.data.idx import read_idx
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
kind, path = sys.argv[1], sys.argv[2]
try:
    nndl.load(path) if kind == "model" else read_idx(path)
except nndl.NNDLError as exc:
    print("refused:", type(exc).__name__)
"""


def _run_limited(kind: str, path) -> str:
    done = subprocess.run([sys.executable, "-c", LIMITED, kind, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _model_with(tmp_path, edit) -> str:
    """A small model file with its architecture record changed by ``edit(meta)``."""
    path = tmp_path / "net.npz"
    nndl.Network([nndl.Dense(784, 30), nndl.Dense(30, 10)], seed=0).save(str(path))
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(np.load(io.BytesIO(members[META_KEY + ".npy"])).tobytes())
    edit(meta)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    members[META_KEY + ".npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def _huge_layers(meta: dict) -> None:
    meta["network"]["layers"][0]["n_out"] = 3_000_000          # 9.4 GB of float32 if built
    meta["network"]["layers"][1]["n_in"] = 3_000_000


@pytest.mark.parametrize("case", ["huge layer", "huge file claim", "gzip bomb"])
def test_hostile_files_are_refused_within_a_hard_memory_limit(tmp_path, case):
    if case == "huge layer":
        assert _run_limited("model", _model_with(tmp_path, _huge_layers)) == "refused: ModelFileError"
    elif case == "huge file claim":
        path = tmp_path / "claim-images-idx3-ubyte"
        path.write_bytes(struct.pack(">IIII", 0x803, 60_000_000, 28, 28) + bytes(1000))  # 47 GB claimed
        assert _run_limited("idx", path) == "refused: DataFormatError"
    else:
        path = tmp_path / "bomb-images-idx3-ubyte.gz"
        with gzip.open(path, "wb", compresslevel=1) as f:                # 1 GiB of zeros behind the header
            f.write(struct.pack(">IIII", 0x803, 1_200_000, 28, 28))
            zeros = bytes(1 << 20)
            for _ in range(1024):
                f.write(zeros)
        assert _run_limited("idx", path) == "refused: DataFormatError"
