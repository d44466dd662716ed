"""Where a cross's files come from: a zip (a path or uploaded bytes) or a folder, read safely.

Crosses arrive as uploads to a served dashboard, so every file is read under
three rules:

* Nothing outside the zip, or outside the control file's folder, is ever
  read: a control file that names an absolute path, a web address or a path
  with ``..`` is refused, and in a folder a name that resolves (through a
  symbolic link) outside the folder is refused.
* A zip with an entry whose name is absolute or holds ``..`` is refused as a
  whole, before anything is read.
* The total uncompressed size is capped (:data:`MAX_CROSS_BYTES`, or the
  caller's ``max_bytes``): the sum of the sizes the zip's entries declare is
  checked before anything is decompressed, and the bytes actually
  decompressed are counted while reading (an entry whose data do not match
  its header is an error), so a zip bomb gets a clear error, not an
  exhausted server. Members are read into memory; nothing is extracted to
  disk.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Iterator

from .cross_table import listed
from .errors import LMMInputError, report

__all__ = ["CONTROL_MAX_BYTES", "MAX_CROSS_BYTES", "MAX_ZIP_ENTRIES", "CrossSource", "open_source"]

#: Cap on the total uncompressed size of a cross's files (2 GiB).
MAX_CROSS_BYTES = 2 * 1024**3

#: Cap on the control file's size (it names files and codes; 1 MiB is plenty).
CONTROL_MAX_BYTES = 1024**2

#: Cap on the number of entries in a cross zip.
MAX_ZIP_ENTRIES = 10_000

_CHUNK = 1 << 20
_CONTROL_SUFFIXES = (".yaml", ".yml", ".json")


class CrossSource:
    """The files of one cross: read by the names its control file gives, within the caps.

    Attributes
    ----------
    display : str
        The zip's or control file's name, for messages.
    control_name : str
        The control file's name (inside the zip, or its file name).
    control : bytes
        The control file's contents.
    """

    def __init__(self, display: str, max_bytes: int):
        self.display = display
        self.max_bytes = int(max_bytes)
        self.used = 0
        self.control_name = ""
        self.control = b""

    def label(self, name: str) -> str:
        """How messages name a file of the cross."""
        return f"{name} (in {self.display})"

    def read(self, name: object, what: str) -> bytes:
        """The contents of the file the control file calls ``name`` (for its field ``what``)."""
        name = self._checked_name(name, what)
        data = self._read(name, what)
        return data

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def _read(self, name: str, what: str) -> bytes:
        raise NotImplementedError

    def _checked_name(self, name: object, what: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise LMMInputError(
                f"{self.control_name} (in {self.display}) gives {what}: {name!r}; it must be a file name "
                "(or a list of file names): correct the control file."
            )
        name = name.strip()
        parts = re.split(r"[\\/]+", name)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name):
            raise LMMInputError(
                f"{self.control_name} (in {self.display}) names the web address {name!r} for {what}; "
                "files are never downloaded: put the file beside the control file."
            )
        if name.startswith(("/", "\\")) or re.match(r"^[a-zA-Z]:", name) or ".." in parts:
            raise LMMInputError(
                f"{self.control_name} (in {self.display}) names {name!r} for {what}, a path outside "
                "the cross's folder; only files beside the control file are read: give a name "
                "relative to it without '..'."
            )
        return name

    def _charge(self, size: int, name: str) -> None:
        self.used += size
        if self.used > self.max_bytes:
            raise LMMInputError(
                f"{self.label(name)} takes the cross past its size limit of {_size(self.max_bytes)} "
                "uncompressed; split the cross or raise the limit (max_bytes)."
            )


class _ZipSource(CrossSource):
    def __init__(self, zf: zipfile.ZipFile, display: str, max_bytes: int):
        super().__init__(display, max_bytes)
        self.zf = zf
        infos = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        if len(infos) > MAX_ZIP_ENTRIES:
            raise LMMInputError(
                f"{display} holds {len(infos)} files, more than the {MAX_ZIP_ENTRIES} a cross may have; "
                "zip only the cross's files."
            )
        for info in zf.infolist():
            parts = re.split(r"[\\/]+", info.filename)
            if info.filename.startswith(("/", "\\")) or re.match(r"^[a-zA-Z]:", info.filename) or ".." in parts:
                raise LMMInputError(
                    f"{display} holds the entry {info.filename!r}, whose name leaves the zip's folder; "
                    "such zips are refused: zip the cross's files again without absolute paths or '..'."
                )
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            raise LMMInputError(
                f"{display} declares {_size(declared)} of uncompressed files, more than the limit of "
                f"{_size(max_bytes)}; nothing was extracted: split the cross or raise the limit (max_bytes)."
            )
        self.infos = {i.filename: i for i in infos}
        controls = [n for n in self.infos if n.lower().endswith(_CONTROL_SUFFIXES)]
        yaml = [n for n in controls if not n.lower().endswith(".json")]
        json = [n for n in controls if n.lower().endswith(".json")]
        if len(yaml) > 1 or (not yaml and len(json) > 1):
            many = yaml if len(yaml) > 1 else json
            raise LMMInputError(
                f"{display} holds {len(many)} control files ({listed(many)}); a cross zip holds exactly "
                "one .yaml or .json control file: remove the others."
            )
        if not controls:
            raise LMMInputError(
                f"{display} holds no control file (.yaml or .json) among {listed(self.infos)}; add the "
                "R/qtl2 control file that names the cross's files."
            )
        if yaml and json:
            report(f"{display} holds both YAML and JSON control files; the YAML file {yaml[0]!r} is used "
                   "(as R/qtl2 does).")
        self.control_name = (yaml or json)[0]
        self.folder = posixpath.dirname(self.control_name)
        if self.infos[self.control_name].file_size > CONTROL_MAX_BYTES:
            raise LMMInputError(
                f"{self.control_name} (in {display}) is {_size(self.infos[self.control_name].file_size)}; "
                f"a control file is at most {_size(CONTROL_MAX_BYTES)}: check that it is the control file."
            )
        self.control = self._member(self.control_name)

    def label(self, name: str) -> str:
        return f"{name} (in {self.display})"

    def _path(self, name: str) -> str:
        return posixpath.join(self.folder, name.replace("\\", "/")) if self.folder else name.replace("\\", "/")

    def exists(self, name: str) -> bool:
        return self._path(name) in self.infos

    def _read(self, name: str, what: str) -> bytes:
        path = self._path(name)
        if path not in self.infos:
            present = [n for n in self.infos if n != self.control_name]
            raise LMMInputError(
                f"{self.control_name} (in {self.display}) names {name!r} for {what}, but the zip has no "
                f"such file (it holds {listed(present)}); add the file or correct the name."
            )
        return self._member(path)

    def _member(self, path: str) -> bytes:
        info = self.infos[path]
        budget = self.max_bytes - self.used
        chunks, total = [], 0
        try:
            with self.zf.open(info) as fh:
                while True:
                    chunk = fh.read(_CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > info.file_size or total > budget:
                        break
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
            raise LMMInputError(
                f"{self.label(path)} could not be decompressed ({exc}); the zip is damaged: zip the "
                "cross's files again."
            ) from None
        except (RuntimeError, NotImplementedError) as exc:
            raise LMMInputError(
                f"{self.label(path)} cannot be read ({exc}); use an unencrypted zip with the usual "
                "(deflate) compression."
            ) from None
        if total > info.file_size:
            raise LMMInputError(
                f"{self.label(path)} holds more data than its zip header declares; the zip is damaged "
                "or forged: zip the cross's files again."
            )
        self._charge(total, path)
        return b"".join(chunks)


class _FolderSource(CrossSource):
    def __init__(self, control: Path, display: str, max_bytes: int):
        super().__init__(display, max_bytes)
        self.folder = control.parent.resolve()
        self.control_name = control.name
        size = control.stat().st_size
        if size > CONTROL_MAX_BYTES:
            raise LMMInputError(
                f"{control} is {_size(size)}; a control file is at most {_size(CONTROL_MAX_BYTES)}: "
                "check that it is the control file."
            )
        self.control = control.read_bytes()

    def label(self, name: str) -> str:
        return name

    def _resolve(self, name: str) -> Path:
        return (self.folder / name).resolve()

    def exists(self, name: str) -> bool:
        path = self._resolve(name)
        return path.is_relative_to(self.folder) and path.is_file()

    def _read(self, name: str, what: str) -> bytes:
        path = self._resolve(name)
        if not path.is_relative_to(self.folder):
            raise LMMInputError(
                f"{self.control_name} names {name!r} for {what}, which leads outside the control file's "
                f"folder {self.folder}; only files in that folder are read: copy the file there."
            )
        if not path.is_file():
            what_is = "is a folder" if path.is_dir() else "does not exist"
            raise LMMInputError(
                f"{self.control_name} names {name!r} for {what}, but {self.folder / name} {what_is}; "
                "add the file or correct the name in the control file."
            )
        size = path.stat().st_size
        self._charge(size, name)
        with open(path, "rb") as fh:
            data = fh.read(size + 1)
        if len(data) > size:
            raise LMMInputError(f"{name} grew while it was read; read the cross again when it is complete.")
        return data


@contextmanager
def open_source(source, name: str | None, max_bytes: int) -> Iterator[CrossSource]:
    """The :class:`CrossSource` of a zip path, zip bytes or control file path (a context manager).

    Parameters
    ----------
    source : str, Path, bytes
        A ``.zip``, a ``.yaml``/``.json`` control file beside its files, or
        the bytes of a zip (an upload).
    name : str or None
        How messages name the cross (default: the path, or "the uploaded
        cross").
    max_bytes : int
        Cap on the total uncompressed bytes read.
    """
    zf = None
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            zf = _open_zip(BytesIO(bytes(source)), name or "the uploaded cross")
            yield _ZipSource(zf, name or "the uploaded cross", max_bytes)
            return
        path = Path(source)
        display = name or str(path)
        if path.is_dir():
            raise LMMInputError(f"{path} is a folder; give the cross's zip file or its control file (.yaml or .json).")
        if not path.exists():
            raise LMMInputError(f"{path} does not exist; check the path to the cross (a .zip, .yaml or .json file).")
        suffix = path.suffix.lower()
        if suffix == ".zip":
            zf = _open_zip(path, display)
            yield _ZipSource(zf, display, max_bytes)
        elif suffix in _CONTROL_SUFFIXES:
            yield _FolderSource(path, display, max_bytes)
        else:
            raise LMMInputError(
                f"{path} is neither a zip nor a control file; give a cross as R/qtl2 reads it: a .zip, "
                "or a .yaml or .json control file beside its files."
            )
    finally:
        if zf is not None:
            zf.close()


def _open_zip(target, display: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise LMMInputError(
            f"{display} is not a readable zip file ({exc}); give the cross as a .zip made by R/qtl2's "
            "zip_datafiles() or any zip tool."
        ) from None


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
