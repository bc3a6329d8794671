"""File-system rules shared by every writer: whole files or nothing, and inputs are never overwritten."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError

__all__ = [
    "atomic_path",
    "check_output_path",
    "expand_inputs",
    "fetched",
    "is_url",
    "join_location",
    "list_images",
    "local_path",
    "location_exists",
    "natural_key",
    "staged",
    "upload_folder",
    "url_filesystem",
    "write_text",
]


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
    # A fresh name, not a file: the writer makes the file inside the try below, so an exception at any point
    # (a worker's stop arrives as one, at any bytecode) finds it there to remove. A file made before the try
    # would be left behind by one that arrives between the two.
    tmp_path = (path.parent if str(path.parent) else Path(".")) / f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}"
    try:
        yield tmp_path
        if tmp_path.exists():       # the bits of a new file, whatever the writer made it with (a copy brings its own)
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


# -- fsspec URLs ----------------------------------------------------------------------------------------
# A "location" is a local path or an fsspec URL (s3://, gs://, memory://, file://, ...). Readers and writers work
# on local files: a remote input is fetched to a temporary file first, a remote output is written locally and
# uploaded whole (an object store's PUT replaces an object at once, so readers never see half of it).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path.

    Args:
        location: a path or URL.

    Returns:
        True for ``s3://bucket/a.jpg``, ``file:///tmp/a.jpg``; False for ``a.jpg``, ``C:\\a.jpg``.
    """
    return isinstance(location, str) and bool(_URL.match(location))


def url_filesystem(url: str, *, argument: str = "path"):
    """The fsspec filesystem of ``url`` and the path inside it.

    Args:
        url: an fsspec URL.
        argument: the name error messages give it.

    Returns:
        ``(filesystem, path)``.

    Raises:
        MissingDependencyError: fsspec is not installed (``lensblur[scale]``).
        InputError: the protocol is unknown, or its filesystem package (``s3fs``, ``gcsfs``...) is missing.
    """
    from .._optional import require

    core = require("fsspec.core", extra="scale", feature="Reading and writing URLs", package="fsspec")
    protocol = url.split("://", 1)[0]
    try:
        return core.url_to_fs(url)
    except ImportError as exc:
        raise InputError(argument, expected=f"a URL whose filesystem package is installed ({protocol}://)",
                         got=f"{url} ({exc})", fix="install it (s3fs for s3://, gcsfs for gs://, adlfs for az://)"
                         ) from exc
    except ValueError as exc:
        raise InputError(argument, expected="a path or an fsspec URL (s3://, gs://, file://, memory://)",
                         got=f"{url} ({exc})", fix="check the URL's protocol") from exc


def local_path(location: str | os.PathLike) -> Path | None:
    """``location`` as a local path (plain paths and ``file://`` URLs), None for a remote URL.

    Args:
        location: a path or URL.

    Returns:
        The :class:`~pathlib.Path`, or None.
    """
    if not is_url(location):
        return Path(location)
    if location.startswith("file://"):
        return Path(url_filesystem(location)[1])
    return None


def join_location(base: str | os.PathLike, *parts: str) -> str | Path:
    """``base/part/...``: a :class:`~pathlib.Path` for a local ``base``, a URL (``/``-joined) for a remote one."""
    local = local_path(base)
    if local is not None and not is_url(base):
        return local.joinpath(*parts)
    return "/".join([str(base).rstrip("/"), *parts])


def location_exists(location: str | os.PathLike, *, argument: str = "path") -> bool:
    """Whether the file or folder at ``location`` (a path or a URL) exists."""
    local = local_path(location)
    if local is not None:
        return local.exists()
    fs, path = url_filesystem(location, argument=argument)
    return fs.exists(path)


@contextlib.contextmanager
def fetched(location: str | os.PathLike, *, argument: str = "path") -> Iterator[Path]:
    """A local file holding the content at ``location``: the path itself, or a temporary copy of a URL's
    object (with the same file name, so its suffix still says its format), removed afterwards.

    Raises:
        InputError: the URL does not exist (or as :func:`url_filesystem`).
    """
    local = local_path(location)
    if local is not None:
        yield local
        return
    fs, path = url_filesystem(location, argument=argument)
    if not fs.isfile(path):
        raise InputError(argument, expected="an existing file", got=str(location), fix="check the URL")
    with tempfile.TemporaryDirectory(prefix="lensblur-in-") as folder:
        target = Path(folder) / path.rstrip("/").rsplit("/", 1)[-1]
        fs.get_file(path, str(target))
        yield target


@contextlib.contextmanager
def staged(location: str | os.PathLike, *, argument: str = "output") -> Iterator[Path]:
    """A local path to write ``location``'s content to: the path itself (the writer makes it atomic, as
    :func:`atomic_path`), or for a remote URL a temporary file of the same name, uploaded whole when the block
    succeeds and never uploaded when it fails."""
    local = local_path(location)
    if local is not None:
        yield local
        return
    fs, path = url_filesystem(location, argument=argument)
    with tempfile.TemporaryDirectory(prefix="lensblur-out-") as folder:
        target = Path(folder) / path.rstrip("/").rsplit("/", 1)[-1]
        yield target
        parent = path.rstrip("/").rsplit("/", 1)[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.put_file(str(target), path)


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_inputs(specs: Iterable[str | os.PathLike], suffixes: Iterable[str], *,
                  argument: str = "inputs") -> list[str | Path]:
    """The files that paths, folders and glob patterns (local, or fsspec URLs) name, in the order given.

    A folder gives its images (:func:`list_images`'s rule: these suffixes, hidden files skipped, natural
    order); a pattern (``shots/*.jpg``, ``s3://bucket/shots/*.jpg``) the files it matches, sorted; a file
    itself. A file named twice is kept once (a local file by its resolved path: ``a.jpg`` and ``/here/a.jpg``
    are one file), as it was named first.

    Args:
        specs: the paths, folders and patterns.
        suffixes: lower-case suffixes with the dot of the files folders and patterns may give.
        argument: the name error messages give the inputs.

    Returns:
        Local files as :class:`~pathlib.Path`, remote ones as URLs.

    Raises:
        InputError: an entry that does not exist, a folder without images or a pattern that matches none.
    """
    wanted = tuple(suffixes)
    found: list[str | Path] = []
    seen: set = set()
    for spec in specs:
        text = os.fspath(spec)
        local = local_path(text)
        if local is not None and not is_url(text):
            if _has_magic(text) and not local.exists():      # a file named "a[1].jpg" is that file
                matches = sorted(Path(m) for m in glob.glob(text) if Path(m).is_file()
                                 and Path(m).suffix.lower() in wanted)
            elif local.is_dir():
                matches = list_images(local, wanted)
            elif local.is_file():
                matches = [local]
            else:
                raise InputError(argument, expected="existing files, folders or glob patterns", got=text,
                                 fix="check the path")
        else:
            fs, path = url_filesystem(text, argument=argument)
            url = fs.unstrip_protocol
            if _has_magic(path) and not fs.exists(path):
                matches = [url(p) for p in sorted(fs.glob(path)) if fs.isfile(p)
                           and Path(p).suffix.lower() in wanted]
            elif fs.isdir(path):
                names = [p for p in fs.ls(path, detail=False) if fs.isfile(p) and Path(p).suffix.lower() in wanted
                         and not Path(p).name.startswith(".")]
                matches = [url(p) for p in sorted(names, key=lambda p: natural_key(Path(p)))]
            elif fs.isfile(path):
                matches = [text]
            else:
                raise InputError(argument, expected="existing files, folders or glob patterns", got=text,
                                 fix="check the URL")
        if not matches:
            raise InputError(argument, expected=f"images ({', '.join(wanted)})", got=f"none in {text}",
                             fix="check the folder or pattern")
        for match in matches:
            key = match.resolve() if isinstance(match, Path) else match
            if key not in seen:
                seen.add(key)
                found.append(match)
    return found


def upload_folder(folder: str | os.PathLike, url: str, *, last: Iterable[str] = ()) -> None:
    """Copy the files directly in a local ``folder`` to the remote folder ``url``, the names in ``last``
    after all others (a reader that waits for them finds the rest already there).

    Args:
        folder: the local folder.
        url: the remote folder (an fsspec URL).
        last: file names to upload last, in this order.
    """
    fs, path = url_filesystem(url)
    fs.makedirs(path, exist_ok=True)
    late = list(last)
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    for item in sorted(files, key=lambda p: (p.name in late, late.index(p.name) if p.name in late else 0, p.name)):
        fs.put_file(str(item), f"{path.rstrip('/')}/{item.name}")
