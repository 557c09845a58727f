"""What specgen keeps about an output folder, in ``OUT/.specgen/``.

- ``manifest.json`` — every file specgen wrote there: its owner (which spec and which output kind
  produced it, e.g. ``resnet_ae/torch`` or ``resnet_ae/diagrams:pdf``) and the SHA-256 of what was
  written. A file is specgen's only when the manifest lists it with the bytes it still has; a file a
  person wrote, or changed after specgen wrote it, is theirs. Nothing is ever inferred from a
  comment a person could type.
- ``journal.json`` — exists only while a run writes: the temporary and backup files it made and
  how far it got, so that a run killed half-way is undone (or finished) by the next one.

The folder is locked (``flock`` on ``OUT/.specgen`` itself, so no lock file is left behind) while a
run checks and writes it; a second run waits and says for whom.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError, SpecErrors

STATE_DIR = ".specgen"
MANIFEST = "manifest.json"
JOURNAL = "journal.json"
FORMAT = 1

#: temporary and backup files a run makes beside its targets
TEMP_NAME = re.compile(r"\.specgen-[0-9a-f]{16}\.(tmp|bak)")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def os_problem(exc: OSError, path: Path | str | None = None, doing: str = "write") -> SpecError:
    """A user error for an OS error: what failed, where, and what to do about it."""
    where = path if path is not None else (exc.filename or "")
    reason = {
        errno.ENOSPC: ("the disk is full", "free some space, or choose another output folder"),
        errno.EDQUOT: ("the disk quota is used up", "free some space, or choose another folder"),
        errno.EROFS: ("the file system is read-only", "choose a writable output folder with -o"),
        errno.EACCES: ("permission denied", "choose a folder you can write to, or fix its mode"),
        errno.EPERM: ("operation not permitted", "choose a folder you can write to"),
        errno.ENOTDIR: ("a part of this path is a file, not a folder", "choose another path"),
        errno.EISDIR: ("this is a folder", "give a file name"),
        errno.ENOENT: ("no such file or folder", "check the path"),
        errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
        errno.ELOOP: ("the path goes through a symbolic link", "give the real path"),
    }.get(exc.errno or -1, (exc.strerror or str(exc), "check the path and try again"))
    return SpecError(f"cannot {doing} '{where}': {reason[0]}", hint=reason[1])


@dataclass
class Manifest:
    """``relative path -> (owner, sha256)`` of every file specgen wrote in one output folder."""

    files: dict[str, tuple[str, str]] = field(default_factory=dict)

    def owner(self, rel: str) -> str | None:
        entry = self.files.get(rel)
        return entry[0] if entry else None

    def matches(self, rel: str, data: bytes) -> bool:
        entry = self.files.get(rel)
        return entry is not None and entry[1] == digest(data)

    def dump(self) -> bytes:
        body = {
            "format": FORMAT,
            "files": {rel: {"owner": o, "sha256": h} for rel, (o, h) in sorted(self.files.items())},
        }
        return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8")


def read_manifest(out: Path) -> Manifest:
    """The folder's manifest; an absent, unreadable or malformed one counts as empty (then
    nothing in the folder is taken for specgen's)."""
    path = out / STATE_DIR / MANIFEST
    try:
        data = read_regular(path, limit=64 * 1024 * 1024)
        body = json.loads(data)
    except (OSError, ValueError):
        return Manifest()
    files: dict[str, tuple[str, str]] = {}
    raw = body.get("files") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        return Manifest()
    for rel, entry in raw.items():
        if (
            isinstance(rel, str)
            and isinstance(entry, dict)
            and isinstance(entry.get("owner"), str)
            and isinstance(entry.get("sha256"), str)
            and safe_rel(rel)
        ):
            files[rel] = (entry["owner"], entry["sha256"])
    return Manifest(files)


def safe_rel(rel: str) -> bool:
    """Whether ``rel`` is a plain relative POSIX path that stays inside the folder."""
    parts = rel.split("/")
    return (
        bool(rel)
        and not rel.startswith("/")
        and "\\" not in rel
        and "\x00" not in rel
        and all(p not in ("", ".", "..") for p in parts)
    )


def real_parents(out: Path, rel: str) -> bool:
    """Whether every folder between ``out`` and ``rel`` is a real folder, not a link (so that
    nothing done to ``out / rel`` can reach outside ``out``)."""
    cur = out
    for part in rel.split("/")[:-1]:
        cur = cur / part
        try:
            if not stat.S_ISDIR(os.lstat(cur).st_mode):
                return False
        except OSError:
            return False
    return True


def in_folder(out: Path, rel: object) -> bool:
    """``rel`` is a safe relative path whose folders inside ``out`` are all real."""
    return isinstance(rel, str) and safe_rel(rel) and real_parents(out, rel)


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO or device) of at most
    ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            raise OSError(errno.EINVAL, "not a regular file of a sensible size", str(path))
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def file_bytes(path: Path) -> bytes | None:
    """The content of a regular file at ``path`` (not followed if it is a link), else None."""
    try:
        return read_regular(path, limit=1 << 31)
    except OSError:
        return None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` (inside specgen's own state folder) with ``data``, atomically."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------------------------
# The lock


@contextmanager
def locked(out: Path, *, announce=None) -> Iterator[Path]:
    """Hold the output folder's lock (creating ``OUT/.specgen``); yields the state folder.

    ``announce(text)`` is called once if another run holds the lock and this one waits.
    """
    state = out / STATE_DIR
    if state.is_symlink():
        raise SpecErrors(
            [SpecError(f"'{state}' is a symbolic link; specgen does not write through links")]
        )
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _journal_pid(state)
            who = f"another specgen run (pid {holder})" if holder else "another specgen run"
            (announce or _stderr)(f"waiting: {who} is writing to {out}; this run goes on after it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield state
    finally:
        os.close(fd)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _journal_pid(state: Path) -> int | None:
    try:
        body = json.loads(read_regular(state / JOURNAL, limit=1 << 20))
        pid = body.get("pid")
        return pid if isinstance(pid, int) else None
    except (OSError, ValueError, AttributeError):
        return None


# ----------------------------------------------------------------------------------------------
# The journal


@dataclass
class Journal:
    """What one run has put on disk so far (relative paths), written before each step."""

    pid: int
    phase: str = "checking"  # checking -> staging -> committing -> committed
    #: target -> temporary file holding its new content
    temps: dict[str, str] = field(default_factory=dict)
    #: target -> backup of its old content (made before it is replaced or removed)
    backups: dict[str, str] = field(default_factory=dict)
    #: targets that did not exist before this run -> SHA-256 of what this run puts there
    created: dict[str, str] = field(default_factory=dict)
    #: the manifest before this run (put back when the run is rolled back)
    old_manifest: bytes = b""

    def save(self, state: Path) -> None:
        body = {
            "pid": self.pid,
            "phase": self.phase,
            "temps": dict(sorted(self.temps.items())),
            "backups": dict(sorted(self.backups.items())),
            "created": dict(sorted(self.created.items())),
            "old_manifest": self.old_manifest.decode("utf-8"),
        }
        write_atomic(state / JOURNAL, (json.dumps(body, indent=1) + "\n").encode("utf-8"))


def clear_journal(state: Path) -> None:
    try:
        os.unlink(state / JOURNAL)
    except FileNotFoundError:
        pass


def _ours(out: Path, rel: object) -> Path | None:
    """The path of a temporary/backup file the journal names, if it is one specgen makes."""
    if not in_folder(out, rel) or not TEMP_NAME.fullmatch(rel.split("/")[-1]):
        return None
    path = out / rel
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISREG(st.st_mode) else None


def restore(backup: Path, target: Path) -> None:
    """Put ``backup`` back at ``target``. A backup may be a hard link to the target itself (the
    kill came before the target was replaced), and renaming a file onto another name of itself
    does nothing, so that case only removes the backup."""
    try:
        same = os.path.samefile(backup, target)
    except OSError:
        same = False
    if same:
        os.unlink(backup)
    else:
        os.replace(backup, target)


def recover(out: Path, state: Path) -> list[str]:
    """Undo (or finish) what a killed run left; returns messages for the user.

    A run killed while staging or committing is rolled back: its temporary files are removed,
    every replaced or removed file gets its old content back, and files it created are removed.
    A run killed after committing only leaves backups to remove.
    """
    for leftover in state.glob(f"{JOURNAL}.*.tmp"):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink()
    try:
        body = json.loads(read_regular(state / JOURNAL, limit=16 * 1024 * 1024))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        clear_journal(state)
        return [f"removed an unreadable journal of an interrupted run in {out}"]
    if not isinstance(body, dict):
        clear_journal(state)
        return []
    phase = body.get("phase")
    temps = body.get("temps") if isinstance(body.get("temps"), dict) else {}
    backups = body.get("backups") if isinstance(body.get("backups"), dict) else {}
    created = body.get("created") if isinstance(body.get("created"), dict) else {}
    removed = 0
    for tmp in temps.values():
        if (p := _ours(out, tmp)) is not None:
            p.unlink()
            removed += 1
    restored = 0
    if phase == "committing":
        for target, bak in backups.items():
            if (p := _ours(out, bak)) is not None and in_folder(out, target):
                restore(p, out / target)
                restored += 1
        for target, sha in created.items() if isinstance(created, dict) else ():
            if not in_folder(out, target) or target in backups:
                continue
            # only a file with exactly the content this run wrote
            if (data := file_bytes(out / target)) is not None and digest(data) == sha:
                os.unlink(out / target)
                removed += 1
        old = body.get("old_manifest")
        if isinstance(old, str) and old:
            write_atomic(state / MANIFEST, old.encode("utf-8"))
        elif old == "":
            try:
                os.unlink(state / MANIFEST)
            except FileNotFoundError:
                pass
    else:
        for bak in backups.values():
            if (p := _ours(out, bak)) is not None:
                p.unlink()
                removed += 1
    clear_journal(state)
    if not (removed or restored):
        return []
    what = "rolled back" if phase == "committing" else "cleaned up after"
    return [
        f"{what} an interrupted specgen run in {out}: {restored} file(s) restored, "
        f"{removed} leftover file(s) removed"
    ]
