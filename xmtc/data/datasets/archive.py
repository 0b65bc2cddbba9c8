"""Safe, streaming reading of ``.tar.gz`` archives.

Members are read in place (``TarFile.extractfile``) and never extracted, so
nothing is written to disk; every member name is still checked, and a name
that would escape the archive's directory (absolute, ``..``), a link or a
device is refused with :class:`DataError`. A truncated or non-tar file gives
a :class:`DataError` naming the archive.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from xmtc.data.datasets.base import DataError


def check_member_name(archive: Path, name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    drive = bool(p.parts) and ":" in p.parts[0]
    if p.is_absolute() or ".." in p.parts or drive:
        raise DataError(f"{archive}: unsafe member name {name!r} (would write outside the target directory)")


def iter_members(archive: Path, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member_name, content)`` of the regular files accepted by ``want``.

    Reads the archive in one streaming pass (``r|*``).
    """
    archive = Path(archive)
    try:
        with tarfile.open(archive, mode="r|*") as tf:
            for m in tf:
                check_member_name(archive, m.name)
                if m.issym() or m.islnk() or m.isdev():
                    if want(m.name):
                        raise DataError(f"{archive}: member {m.name!r} is a link or device, refused")
                    continue
                if not m.isfile() or not want(m.name):
                    continue
                f = tf.extractfile(m)
                yield m.name, f.read()
    except DataError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive}: not a readable .tar.gz archive (truncated or wrong format?): {exc}") from exc
