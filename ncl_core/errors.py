"""Every error the library raises on purpose, in one hierarchy, and the one rule that sorts them.

- :class:`UserError`: something the user can fix (an image, a dataset, a model file, a device, a
  command line). The message names the file or setting and says what to do.
- :class:`RunFailed`: a run that started and could not finish (training, writing a report).
- :class:`Cancelled`: the user asked to stop.

The CLI (exit codes) and the GUI (job results) both sort exceptions with :func:`classify`, so
they cannot disagree about what is the user's to fix and what is a bug.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["cancelled", "failed", "user", "bug"]


class NCLError(Exception):
    """Base of every error NCL Forensics raises on purpose."""


class UserError(NCLError):
    """A problem the user can fix; the message is one clear line naming the file and the fix."""


class RunFailed(NCLError):
    """A run that started could not finish (disk full, no finite loss, …); the message says why."""


class Cancelled(NCLError):
    """The caller asked to stop (``cancel()`` returned True, or Cancel was pressed)."""


class ImageReadError(UserError):
    """An image (or mask) that cannot be read; the message names the file and what to do."""


class MaskError(ImageReadError):
    """A mask that cannot be used with its image (unreadable, or of another size)."""


class DatasetError(UserError):
    """A folder or list that cannot be used as a dataset; the message lists the layouts."""


class ModelFileError(UserError):
    """A model file that cannot be used; the message names the file and what to do."""


class DeviceError(UserError, ValueError):
    """A requested device is not available on this machine."""


class UsageError(UserError):
    """A mistake in what the user asked for (a command line, a setting)."""


class SynthError(UserError):
    """The generator cannot run (no usable source photo, unsafe output folder, …)."""


class EvidenceFolderError(UserError, ValueError):
    """An output would be written into a folder of evidence; the message says which and why."""


class ReportError(UserError):
    """A report the user can fix (folder choice, settings); the message is one clear line."""


class ReportWriteError(ReportError, RunFailed):
    """The report could not be written (disk full, read-only, permissions): the run failed.

    The journal keeps every row written so far; resuming the report completes it.
    """


class TrainingError(RunFailed):
    """Training cannot start or go on; the message says why and what to do."""


# OSErrors that mean "this path is wrong" rather than "the machine failed" (disk full, I/O).
_PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def classify(exc: BaseException) -> Kind:
    """``cancelled``, ``failed`` (a run broke: exit 1), ``user`` (fix the input: exit 2) or ``bug``.

    A ``ValueError`` from the library is a bad parameter and counts as the user's; so do wrong
    paths. Other ``OSError`` s (disk full, read-only file system) are failed runs.
    """
    if isinstance(exc, (Cancelled, KeyboardInterrupt)):
        return "cancelled"
    if isinstance(exc, RunFailed):
        return "failed"
    if isinstance(exc, (UserError, ValueError, *_PATH_ERRORS)):
        return "user"
    if isinstance(exc, OSError):
        return "failed"
    return "bug"
