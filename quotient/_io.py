"""The file formats of quotient: ``.npz`` runs (trajectories, ensembles), JSON records, folders.

One place for reading and writing files:

- :func:`save_run` / :func:`load_run`: a run (a :class:`~quotient.flow.Trajectory` or an
  :class:`~quotient.ensemble.Ensemble`) as one ``.npz`` holding its arrays, its layers
  ``W_1 .. W_h``, the arrays of its problem and a JSON header ``meta`` tagged with a format.
- :func:`read_npz`: the arrays of any ``.npz`` file, with every way a file can be unreadable
  (missing, a folder, not a zip archive, truncated, pickled objects) reported as one
  :class:`FileFormatError` naming the path.
- :func:`write_npz`, :func:`write_json`: atomic writers (a temporary file beside the target,
  moved into place), whose files get the permissions the umask gives (not ``mkstemp``'s 0600).
- :class:`StagedFolder`: an output folder written beside its target and swapped in when complete.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import tempfile
import zipfile
import zlib

import numpy as np

from .losses import SquareLoss
from .problem import Problem

__all__ = ["FileFormatError"]


class FileFormatError(ValueError):
    """A file that quotient cannot read: not one of its files, or corrupt.

    Raised by :meth:`Trajectory.load <quotient.flow.Trajectory.load>`,
    :meth:`Ensemble.load <quotient.ensemble.Ensemble.load>` and :func:`~quotient.sweep.load_sweep`;
    the message names the path and what is wrong with it. A missing file raises
    ``FileNotFoundError`` instead.
    """


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(temporary: str, path: str, overwrite: bool) -> None:
    """Move a finished temporary file to ``path``, readable as the umask says."""
    os.chmod(temporary, 0o666 & ~_umask())
    if overwrite:
        os.replace(temporary, path)
    else:
        os.link(temporary, path)  # fails if path appeared meanwhile: nothing is clobbered


def _temporary_beside(path: str, suffix: str):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: no such folder {folder}", path)
    # the process id in the name tells a clean-up whose temporary file it is (see partial_owner)
    return tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=suffix, dir=folder)


def stale_partial(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`write_npz` / :func:`write_json` left by a dead process."""
    if not (name.startswith(".") and name.endswith(".partial")):
        return False
    fields = name.split(".")
    pids = [field for field in fields if field.isdigit()]
    return bool(pids) and not _alive(int(pids[-1]))


def write_npz(path: str, arrays: dict, overwrite: bool) -> str:
    """Write ``arrays`` to ``path`` through a temporary file, so no reader sees a partial file.

    With ``overwrite`` false the file is linked into place, which fails with ``FileExistsError``
    if ``path`` appeared meanwhile: an existing file is never clobbered.
    """
    handle, temporary = _temporary_beside(path, ".partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)
        _publish(temporary, path, overwrite)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file (replacing ``path``)."""
    handle, temporary = _temporary_beside(path, ".partial")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        _publish(temporary, path, True)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_json(path: str, content) -> None:
    """Write ``content`` as JSON to ``path`` through a temporary file (replacing ``path``)."""
    write_text(path, json.dumps(content, indent=1))


# ---------------------------------------------------------------------------------------- reading
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError, NotImplementedError)


def read_npz(path, what: str = "a NumPy .npz archive", names=None) -> dict:
    """The arrays of the ``.npz`` file ``path`` (all of them, or those in ``names``), read now.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    FileFormatError
        If ``path`` is a folder, not a zip archive, truncated or corrupt, or holds pickled objects.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"no such file {path}", path)
    if os.path.isdir(path):
        raise FileFormatError(f"{path} is a folder, not {what}")
    with open(path, "rb") as stream:
        head = stream.read(4)
    if head != b"PK\x03\x04":
        kind = "an empty file" if not head else "not a zip archive"
        raise FileFormatError(f"{path} is not {what}: it is {kind}")
    try:
        # numpy leaves the file open when a path fails to open as a zip archive: open it here
        with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:
            return {name: data[name] for name in data.files if names is None or name in names}
    except _NPZ_ERRORS as error:
        reason = "it holds pickled objects" if "pickle" in str(error) else f"{type(error).__name__}: {error}"
        raise FileFormatError(f"{path} is corrupt or truncated ({reason})") from None


def read_meta(path, arrays: dict, format: str | None = None) -> dict:
    """The JSON header ``meta`` of a quotient ``.npz`` file, checked against ``format``."""
    kind = "quotient file" if format is None else f"quotient {format.split('.')[1].split('/')[0]} file"
    if "meta" not in arrays:
        raise FileFormatError(f"{path} is not a {kind}: it has no 'meta' header (arrays {sorted(arrays)})")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as error:
        raise FileFormatError(f"{path} is not a {kind}: its 'meta' header is not JSON ({error})") from None
    if not isinstance(meta, dict):
        raise FileFormatError(f"{path} is not a {kind}: its 'meta' header is not a JSON object")
    if format is not None and meta.get("format") != format:
        raise FileFormatError(f"{path} is not a {kind} (format {meta.get('format')!r}, expected {format!r})")
    return meta


# ---------------------------------------------------------------------------------------- runs
def problem_arrays(problem) -> dict:
    """The arrays that define a square-loss problem, for an ``.npz`` file."""
    return {
        "widths": np.array(problem.widths),
        "target": problem.target,
        "sigma": problem.sigma,
        "output_frame": problem.output_frame,
        "input_map": problem.input_map,
        "offset": np.array(problem.offset),
    }


def problem_from_arrays(data):
    """Inverse of :func:`problem_arrays`."""
    widths = tuple(int(d) for d in data["widths"])
    return Problem(
        widths=widths,
        target=data["target"],
        sigma=data["sigma"],
        output_frame=data["output_frame"],
        input_map=data["input_map"],
        offset=float(data["offset"]),
    )


#: The ``.npz`` format of a :class:`quotient.Trajectory`: its format tag, the arrays and the JSON header's entries.
TRAJECTORY_FORMAT = "quotient.trajectory/1"
TRAJECTORY_ARRAYS = ("times", "loss", "gradient_norm", "conservation_drift")
TRAJECTORY_META = ("method", "rtol", "atol", "step", "n_rhs", "n_steps", "status", "message", "meta")
#: The ``.npz`` format of a :class:`quotient.Ensemble`; its header's ``gradient_atol`` was ``gradient_tol`` in older files.
ENSEMBLE_FORMAT = "quotient.ensemble/1"
ENSEMBLE_ARRAYS = TRAJECTORY_ARRAYS + ("converged_time", "member_status")
ENSEMBLE_META = ("method", "rtol", "atol", "gradient_atol", "n_rhs", "n_steps", "status", "message", "meta")
_OLD_META_NAMES = {"gradient_atol": "gradient_tol"}


def save_record(path, format: str, record, array_names, meta_names, overwrite: bool) -> str:
    """Write a run object (a trajectory or an ensemble) with :func:`save_run`; return the path.

    ``record`` has the attributes ``problem``, ``points`` and every name of ``array_names``
    (stored as arrays) and ``meta_names`` (stored in the JSON header): the formats above.
    """
    meta = {name: getattr(record, name) for name in meta_names}
    arrays = {name: getattr(record, name) for name in array_names}
    return save_run(path, format, record.problem, record.points, meta, arrays, overwrite)


def load_record(path, cls, format: str, array_names, meta_names):
    """The run written by :func:`save_record`, rebuilt as ``cls(problem=..., points=..., **fields)``.

    Every name of ``array_names`` and ``meta_names`` becomes a keyword of ``cls``; a header that
    lacks one, or fields that ``cls`` refuses, raise :class:`FileFormatError` naming the path.
    """
    kind = format.split(".")[1].split("/")[0]
    problem, points, meta, data = load_run(path, format, array_names)
    fields = {"problem": problem, "points": points, **{name: data[name] for name in array_names}}
    for name in meta_names:
        key = name if name in meta else _OLD_META_NAMES.get(name, name)
        if key not in meta:
            raise FileFormatError(f"{os.fspath(path)} is not a valid quotient {kind} file: its header lacks {name!r}")
        fields[name] = meta[key]
    try:
        return cls(**fields)
    except (KeyError, ValueError, TypeError) as error:
        raise FileFormatError(f"{os.fspath(path)} is not a valid quotient {kind} file: {type(error).__name__}: {error}") from None


def save_run(path, format: str, problem, points, meta: dict, arrays: dict, overwrite: bool) -> str:
    """Write one run (a trajectory or an ensemble) to an ``.npz`` file; the shared file format.

    The file holds ``arrays``, the layers as ``W_1 .. W_h``, the problem's arrays and ``meta``
    as a JSON header tagged with ``format``.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"path must end in '.npz'; got {path!r}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(errno.EEXIST, f"{path} exists; pass overwrite=True to replace it", path)
    if not isinstance(problem.end_to_end_loss, SquareLoss):
        raise ValueError(f"only runs of square-loss problems can be saved; this one has {type(problem.end_to_end_loss).__name__}")
    arrays = dict(arrays, meta=np.array(json.dumps({"format": format, **meta})), **problem_arrays(problem))
    arrays.update({f"W_{i}": layer for i, layer in enumerate(points, start=1)})
    return write_npz(path, arrays, overwrite)


def lock_folder(folder: str, name: str, what: str) -> str:
    """Create the lock file ``folder/name`` holding this process id; return its path.

    A lock of a live process raises ``FolderLockedError`` naming that process; a lock left by a
    dead process (on this machine) is taken over.
    """
    path = os.path.join(folder, name)
    for _ in range(3):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                with open(path) as stream:
                    text = stream.read().strip()
            except FileNotFoundError:
                continue
            pid = int(text) if text.isdigit() else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise FolderLockedError(f"{folder} is in use by {what} of process {pid} (lock file {path}); wait for it or stop it") from None
            if pid is None and text == "":
                continue  # being written by its creator this instant
            os.unlink(path)  # stale: its process is gone
            continue
        with os.fdopen(handle, "w") as stream:
            stream.write(str(os.getpid()))
        return path
    raise FolderLockedError(f"{folder}: could not take the lock {path}")


class FolderLockedError(RuntimeError):
    """A folder is locked by another live process (a second sweep into one folder)."""


def load_run(path, format: str, names=()):
    """Read a file of :func:`save_run`: ``(problem, points, meta, arrays)``.

    ``names`` are the arrays the caller needs (besides the problem's and the layers); a file
    that lacks one, or whose arrays do not make a problem, raises :class:`FileFormatError`.
    """
    path = os.fspath(path)
    kind = format.split(".")[1].split("/")[0]
    arrays = read_npz(path, f"a quotient {kind} file")
    meta = read_meta(path, arrays, format)
    missing = [name for name in ("widths", "target", "sigma", "output_frame", "input_map", "offset", *names) if name not in arrays]
    if missing:
        raise FileFormatError(f"{path} is not a complete quotient {kind} file: it lacks {', '.join(missing)}")
    try:
        problem = problem_from_arrays(arrays)
        points = tuple(arrays[f"W_{i}"] for i in range(1, len(problem.widths)))
    except (KeyError, ValueError, TypeError) as error:
        raise FileFormatError(f"{path} is not a valid quotient {kind} file: {error}") from None
    return problem, points, meta, arrays


# ---------------------------------------------------------------------------------------- folders
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def stage_hook(stage: str) -> None:
    """Test hook: ``QUOTIENT_TEST_KILL_AT=<stage>`` kills this process with SIGKILL at ``stage``."""
    if os.environ.get("QUOTIENT_TEST_KILL_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


class StagedFolder:
    """An output folder written beside its target and swapped in only when complete.

    ``with StagedFolder(target) as folder:`` gives a fresh folder ``folder`` next to ``target``
    (``.<name>.partial-<pid>-<random>``, permissions as the umask gives); on a clean exit it
    replaces ``target`` (one atomic ``renameat2(RENAME_EXCHANGE)`` where the system has it,
    else two renames) and the old contents are deleted; on an exception it is deleted and
    ``target`` is left as it was. A process killed at any moment therefore leaves at ``target``
    either the old complete folder or the new complete one (with the two-rename fallback, a kill
    between the renames leaves the old folder at ``.<name>.old-<pid>-*``); leftovers of killed
    processes are removed by the next run into the same target.
    """

    def __init__(self, target: str):
        self.target = os.path.abspath(os.fspath(target))
        self.parent, self.name = os.path.split(self.target)
        self.path = None

    def _leftovers(self):
        for entry in os.listdir(self.parent):
            for tag in (".partial-", ".old-"):
                prefix = f".{self.name}{tag}"
                if entry.startswith(prefix):
                    pid = entry[len(prefix) :].split("-", 1)[0]
                    if pid.isdigit() and not _alive(int(pid)):
                        shutil.rmtree(os.path.join(self.parent, entry), ignore_errors=True)

    def __enter__(self) -> str:
        try:
            os.makedirs(self.parent, exist_ok=True)
            self._leftovers()
            self.path = tempfile.mkdtemp(prefix=f".{self.name}.partial-{os.getpid()}-", dir=self.parent)
        except OSError as error:
            raise OSError(error.errno, f"cannot write {self.target}: {error.strerror} in {self.parent}", self.target) from None
        os.chmod(self.path, 0o777 & ~_umask())
        return self.path

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        stage_hook("before-swap")
        if not os.path.isdir(self.target):
            os.rename(self.path, self.target)
        elif _exchange(self.path, self.target):
            stage_hook("after-swap")
            shutil.rmtree(self.path)  # now the old contents
        else:
            aside = tempfile.mkdtemp(prefix=f".{self.name}.old-{os.getpid()}-", dir=self.parent)
            os.rmdir(aside)
            os.rename(self.target, aside)
            os.rename(self.path, self.target)
            stage_hook("after-swap")
            shutil.rmtree(aside)
