"""ask() works right after install: the default index is built on first use, safely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sourcier import IndexNotFoundError, ask, load_index

FIRST_USE = """
import json, sys
from pathlib import Path
import sourcier.paths as paths
paths.default_index_dir = lambda: Path(sys.argv[1])  # the default index, in a temp folder
from sourcier import ask
a = ask("Qui préside le pôle SCS ?")
print(json.dumps({"refused": a.refused, "quotes": [c.quote for c in a.citations]}))
"""


def test_an_explicit_index_that_does_not_exist_still_raises(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="no index at"):
        ask("Qui préside le pôle SCS ?", index=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_two_processes_asking_first_build_the_default_index_once(tmp_path: Path) -> None:
    target = tmp_path / "default-index"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
        assert "DEBUG" not in err  # library logs stay quiet
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert answers[0] == answers[1] and not answers[0]["refused"]
    assert any("HENRY" in q for q in answers[0]["quotes"])
    announced = [err for _, err in outs if "No index yet" in err]
    assert len(announced) >= 1
    idx = load_index(target)
    assert len(idx.documents()) == 5
    assert len({c.chunk_id for c in idx.snapshot.chunks}) == len(idx.snapshot.chunks)
