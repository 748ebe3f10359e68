"""Shared by the OpenDocument and PowerPoint readers: parts of a zip package read as XML,
with the limits that keep a hostile file from filling memory."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree

MAX_PART_BYTES = 64 * 1024 * 1024
"""The largest XML part read from a package, uncompressed (a zip bomb stops here)."""


class PackageError(ValueError):
    """A package that cannot be read; its message is the one-line reason (the reader
    turns it into a :class:`~sourcier.errors.LoadError` with its format's code)."""


def open_package(data: bytes, kind: str) -> zipfile.ZipFile:
    """The file as a zip package, or a :class:`PackageError` naming ``kind``."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise PackageError(f"corrupt or unreadable {kind} file (not a zip package)") from err


def read_xml(package: zipfile.ZipFile, name: str, kind: str) -> ElementTree.Element:
    """Part ``name`` of the package, parsed.

    Raises:
        PackageError: the part is missing, too large or not well-formed XML.
    """
    try:
        info = package.getinfo(name)
    except KeyError as err:
        raise PackageError(f"corrupt {kind} file: {name} is missing") from err
    if info.file_size > MAX_PART_BYTES:
        raise PackageError(
            f"{kind} file too large to read: {name} is {info.file_size / (1024 * 1024):.1f} MB "
            f"uncompressed"
        )
    try:
        with package.open(info) as fh:
            raw = fh.read(MAX_PART_BYTES + 1)
        return ElementTree.fromstring(raw)
    except (ElementTree.ParseError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise PackageError(f"corrupt {kind} file: {name} cannot be read ({err})") from err


def local(tag: str) -> str:
    """An element's name without its namespace (``{urn:...}p`` -> ``p``)."""
    return tag.rsplit("}", 1)[-1]


def cells_as_lines(rows: list[list[str]]) -> list[str]:
    """Table rows as text, as the Word reader lays them out: a row of short cells on
    one line joined by ``" | "``, else each cell on its own; a merged cell's repeat is
    dropped."""
    lines: list[str] = []
    for row in rows:
        cells: list[str] = []
        for text in row:
            text = text.strip()
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if not cells:
            continue
        if all(len(c) <= 80 and "\n" not in c for c in cells):
            lines.append(" | ".join(cells))
        else:
            lines.extend(cells)
    return lines
