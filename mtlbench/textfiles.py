"""Reading the text files of raw sources and submissions: UTF-8 (a byte-order mark is accepted),
every failure one line naming the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mtlbench.errors import InputError


def read_text_file(path: Path, missing: str = "missing") -> str:
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, missing) from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None


def question_answer_lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, question, answer), both stripped, of each non-blank `question|answer` line
    of a VQA file; a line without exactly one '|' is refused."""
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 2:
            raise InputError(path, f"line {number}: expected question|answer, found {len(parts) - 1} '|'")
        yield number, parts[0].strip(), parts[1].strip()
