"""BENCHMARKS.md is written in sections, one per benchmark, each between ``<!-- section:NAME -->`` and
``<!-- /section:NAME -->``; a benchmark run with ``--write`` replaces its own section and leaves the rest alone."""

from __future__ import annotations

from pathlib import Path

from tfpose.artifacts import write_text

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def write_section(path: Path, name: str, text: str) -> None:
    """Replace what lies between the ``name`` markers of ``path`` (appending them the first time)."""
    begin, end = markers(name)
    doc = path.read_text()
    if begin not in doc:
        doc = doc.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    start, stop = doc.index(begin) + len(begin), doc.index(end)
    write_text(path, doc[:start] + "\n" + text.strip() + "\n" + doc[stop:])


def publish(name: str, text: str, write: bool) -> None:
    """Print a benchmark's section; with ``write`` (its ``--write`` flag), also put it into BENCHMARKS.md."""
    print(text)
    if write:
        write_section(BENCHMARKS, name, text)
        print(f"wrote the {name} section of {BENCHMARKS}")
