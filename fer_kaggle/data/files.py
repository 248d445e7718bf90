"""Uniform access to a competition's files, wherever they are: inside the zip that Kaggle
serves (its files may sit in a folder inside), in an extracted directory (or a directory
holding that one zip), or beside a CSV given on its own.

Members are named by their path relative to the competition's root, with `/` between
folders: `train.csv`, `train/1.jpg`, `train/cat/0001.png`.
"""

import hashlib
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from fer_kaggle.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
MAX_MEMBER_BYTES = 16 * 2**30  # what one member of a zip may declare
MAX_RATIO = 200  # how much larger than its compressed bytes a large member may be (CSV of pixels: about 4x)
RATIO_FROM_BYTES = 64 * 2**20  # members smaller than this are never refused for their ratio


def is_image_name(name):
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


class CompetitionFiles:
    def __init__(self, path):
        path = Path(path)
        self.path, self.zip, self.given = path, None, None
        if not path.exists():
            raise DataError(path, "no such file or directory")
        if path.is_dir():
            members = {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*"))
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)}
            zips = [n for n in members if n.lower().endswith(".zip") and "/" not in n]
            if len(zips) == 1 and not any(n.lower().endswith(".csv") or is_image_name(n) for n in members):
                self.__init__(members[zips[0]])
                return
            self.members = members
        elif path.suffix.lower() == ".zip":
            try:
                self.zip = zipfile.ZipFile(path)
                infos = [i for i in self.zip.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(path, f"not a readable zip file ({e})") from None
            _refuse_bombs(path, infos)
            names = [i.filename for i in infos if not _hidden(i.filename)]
            prefix = _common_folder(names)
            self.members = {n[len(prefix):]: n for n in names}
        else:  # one CSV: the competition is the folder around it
            self.given = path.name
            self.members = {p.name: p for p in sorted(path.parent.iterdir()) if p.is_file()}
            for sub in ("train", "test"):  # image folders beside the CSV
                if (path.parent / sub).is_dir():
                    self.members.update({p.relative_to(path.parent).as_posix(): p
                                         for p in sorted((path.parent / sub).rglob("*")) if p.is_file()})

    def names(self):
        return list(self.members)

    def top_level(self):
        return [n for n in self.members if "/" not in n]

    def find(self, *candidates):
        """The first top-level member whose name (case-insensitive) is one of `candidates`."""
        lower = {n.lower(): n for n in self.top_level()}
        for c in candidates:
            if c.lower() in lower:
                return lower[c.lower()]
        return None

    def csvs(self):
        return [n for n in self.top_level() if n.lower().endswith(".csv")]

    def under(self, folder):
        """Members inside `folder` (any depth), relative paths as stored."""
        prefix = folder.rstrip("/") + "/"
        return [n for n in self.members if n.startswith(prefix)]

    def folders(self):
        return sorted({n.split("/", 1)[0] for n in self.members if "/" in n})

    def label(self, name):
        return f"{self.path}:{name}" if self.zip else str(self.members[name])

    def read(self, name) -> bytes:
        try:
            if self.zip:
                return self.zip.read(self.members[name])
            return Path(self.members[name]).read_bytes()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(self.label(name), f"cannot be read, the zip is truncated or corrupt ({e})") from None

    def head(self, name, n) -> bytes:
        """The first `n` bytes of a member (a header), without reading the rest."""
        with self.open(name) as stream:
            try:
                return stream.read(n)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                raise DataError(self.label(name), f"cannot be read, the zip is truncated or corrupt ({e})") from None

    def open(self, name):
        """A binary stream of the member (images are probed for their size without a full read)."""
        try:
            if self.zip:
                return self.zip.open(self.members[name])
            return open(self.members[name], "rb")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(self.label(name), f"cannot be read, the zip is truncated or corrupt ({e})") from None

    def size(self, name):
        if self.zip:
            return self.zip.getinfo(self.members[name]).file_size
        return Path(self.members[name]).stat().st_size

    def fingerprint(self) -> str:
        """sha256 of the source: the zip's bytes, or every member's path and bytes."""
        if self.zip:
            return sha256_file(self.path)
        h = hashlib.sha256()
        for name in sorted(self.members):
            h.update(name.encode() + b"\0" + sha256_file(self.members[name]).encode())
        return h.hexdigest()

    def describe(self, limit=8):
        """A short listing for an error message: a few top-level names and folders, never all."""
        names = self.top_level() + [f + "/" for f in self.folders()]
        shown = ", ".join(sorted(names)[:limit])
        return (shown + (f", ... ({len(names)} entries)" if len(names) > limit else "")) or "nothing"


def _refuse_bombs(path, infos):
    """A zip whose members declare more than a competition could hold, or expand far beyond
    their compressed bytes, is refused before anything is read (zipfile never reads past a
    member's declared size)."""
    for info in infos:
        size, packed = info.file_size, max(1, info.compress_size)
        if size > MAX_MEMBER_BYTES or (size > RATIO_FROM_BYTES and size > MAX_RATIO * packed):
            raise DataError(f"{path}:{info.filename}", f"declares {size / 2**20:,.0f} MiB from {packed / 2**20:,.1f} "
                                                       f"MiB compressed: refused as a zip bomb (limits: "
                                                       f"{MAX_MEMBER_BYTES // 2**30} GiB a member, {MAX_RATIO}x)")


def _hidden(name):
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def _common_folder(names):
    """The one folder every member sits in (`competition/`), to strip; '' when there is none."""
    if not names or any("/" not in n for n in names):
        return ""
    first = names[0].split("/", 1)[0] + "/"
    return first if all(n.startswith(first) for n in names) else ""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
