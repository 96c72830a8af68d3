"""`leaderboard render`: every board of a folder as markdown beside its JSON, and the static site."""

from __future__ import annotations

from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.leaderboard.board import list_boards, pictures_dir, read_board
from mtlbench.leaderboard.markdown import render_markdown
from mtlbench.leaderboard.site import SITE_MARKER, write_site
from mtlbench.outputs import atomic_folder, check_output_file, write_bytes


def _check_site_folder(site: Path) -> None:
    """The site folder is replaced whole on every render: refuse one that holds anything else."""
    if site.is_dir() and any(site.iterdir()) and not (site / SITE_MARKER).is_file():
        raise InputError(site, "exists and is not a site written by leaderboard render: give another --site")


def render(boards_dir: Path, site: Path) -> tuple[list[Path], list[dict]]:
    """Write BOARDS_DIR/<name>.md for every board and the site into `site`; returns (markdown files, boards)."""
    boards_dir, site = Path(boards_dir), Path(site)
    if not boards_dir.is_dir():
        raise InputError(boards_dir, "no such folder of boards")
    boards = [read_board(path) for path in list_boards(boards_dir)]
    if not boards:
        raise InputError(boards_dir, "holds no board (<name>.json): add one with leaderboard add --new")
    for board in boards:
        for entry in board["entries"]:
            for seed in entry["seeds"]:
                for picture in seed["pictures"]:
                    if not (pictures_dir(boards_dir, board["name"]) / picture).is_file():
                        raise InputError(pictures_dir(boards_dir, board["name"]) / picture, f"missing: board {board['name']!r} lists this picture")
    _check_site_folder(site)
    markdown = [check_output_file(boards_dir / f"{board['name']}.md", "--boards-dir") for board in boards]
    with atomic_folder(site, overwrite=True, option="--site") as staging:
        write_site(boards, boards_dir, staging)
        for path, board in zip(markdown, boards):
            write_bytes(path, render_markdown(board).encode("utf-8"))
    return markdown, boards
