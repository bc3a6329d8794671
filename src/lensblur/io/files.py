"""File-system rules shared by every writer: whole files or nothing, and inputs are never overwritten."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError

__all__ = ["atomic_path", "check_output_path", "list_images", "natural_key", "write_text"]


def check_output_path(
    output: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), force: bool = False,
    argument: str = "output",
) -> Path:
    """Validate an output path before any work is done.

    Args:
        output: the file to be written.
        inputs: the files read (None entries are skipped); ``output`` must not be one of them.
        force: allow ``output`` to be one of ``inputs``.
        argument: the name error messages give the output.

    Returns:
        ``output`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: the folder does not exist or is not writable, ``output`` is a folder, or it is one of
            ``inputs`` and ``force`` is False.
    """
    out = Path(output)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        blocking = _file_in_the_way(folder)
        if blocking is not None:
            raise InputError(argument, expected="a path inside a folder", got=f"{out}, but {blocking} is a file",
                             fix="choose a path whose parents are folders")
        raise InputError(argument, expected="a path inside an existing folder", got=str(out),
                         fix=f"create the folder first: mkdir -p {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(argument, expected="a path in a writable folder", got=str(out),
                         fix="choose another folder or fix its permissions")
    if out.is_dir():
        raise InputError(argument, expected="a file path", got=f"{out} (a folder)",
                         fix="name the file to write, e.g. out/result.png")
    for item in inputs:
        if item is None:
            continue
        src = Path(item)
        same = src.exists() and out.exists() and os.path.samefile(src, out)
        if (same or src.resolve() == out.resolve()) and not force:
            raise InputError(argument, expected="a path different from the input", got=str(out),
                             fix="choose another output name, or pass force=True to overwrite the input")
    return out


def _file_in_the_way(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists as something other than a folder, if any."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def make_folder(path: str | os.PathLike, *, argument: str = "out") -> Path:
    """Make the output folder ``path`` (and its parents), or say in one line why it cannot be made.

    Args:
        path: the folder.
        argument: the name error messages give it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`, an existing, writable folder.

    Raises:
        InputError: a parent is a file, ``path`` is a file, or the folder cannot be made or written in.
    """
    folder = Path(path)
    blocking = _file_in_the_way(folder)
    if blocking is not None:
        what = f"{folder} is a file" if blocking == folder else f"{blocking} is a file"
        raise InputError(argument, expected="a folder path (new or existing)", got=what,
                         fix="choose a path whose parents are folders")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise InputError(argument, expected="a folder lensblur may create", got=f"{folder} (permission denied)",
                         fix="choose a folder you can write in") from exc
    except OSError as exc:
        raise InputError(argument, expected="a folder that can be made", got=f"{folder} ({exc.strerror})",
                         fix="choose a folder on a writable disk") from exc
    if not os.access(folder, os.W_OK):
        raise InputError(argument, expected="a folder lensblur may write in", got=f"{folder} (not writable)",
                         fix="choose another folder or fix its permissions")
    return folder


def new_mode(directory: bool = False) -> int:
    """The permissions the umask gives a new file (``0o666 & ~umask``) or folder (``0o777 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success rename it onto ``path``.

    On any error the temporary file is removed, so a reader never sees a half-written file. The file gets the
    permissions the umask gives a new file (``0644`` under the usual ``022``).

    Args:
        path: the file to write; its folder must exist.

    Yields:
        The temporary path to write to (a unique name, so two writers never share it).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.stem}.",
                               suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():       # mkstemp made it 0600; a written file follows the umask like any other
            tmp_path.chmod(new_mode())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all, through :func:`atomic_path`.

    Args:
        path: the file to write; its folder must exist.
        text: the whole content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def natural_key(path: Path) -> tuple:
    """Sort key of a file name in which numbers compare as numbers (``2.jpg`` before ``10.jpg``).

    Args:
        path: the file; only its stem counts.

    Returns:
        The key: the stem split into text and int parts.
    """
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem))


def list_images(folder: str | os.PathLike, suffixes: Iterable[str]) -> list[Path]:
    """The image files directly in ``folder`` whose suffix (any case) is one of ``suffixes``, in natural
    order (:func:`natural_key`); hidden files are skipped.

    Args:
        folder: the folder to list; a folder that does not exist has no images.
        suffixes: lower-case suffixes with the dot, e.g. ``(".jpg", ".png")``.

    Returns:
        The paths, sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = tuple(suffixes)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in wanted and not p.name.startswith(".")]
    return sorted(files, key=natural_key)
