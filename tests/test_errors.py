"""One hierarchy of errors, and one rule (``classify``) that the CLI and the GUI both follow."""

from __future__ import annotations

import argparse
import errno

import pytest

from ncl_core import errors
from ncl_core.cli import EXIT_FAILED, EXIT_USAGE, run
from ncl_core.data.datasets import DatasetError
from ncl_core.data.io import ImageReadError, MaskError
from ncl_core.inference.predictor import Cancelled
from ncl_core.models.modelfile import ModelFileError
from ncl_core.network.device import DeviceError
from ncl_core.report import ReportError, ReportWriteError
from ncl_core.training import TrainingError


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ImageReadError("a.jpg: not an image"), "user"),
        (MaskError("a.png: wrong size"), "user"),
        (DatasetError("no images"), "user"),
        (ModelFileError("m.safetensors: truncated"), "user"),
        (DeviceError("cuda: not available"), "user"),
        (ReportError("choose another folder"), "user"),
        (ValueError("size must be a multiple of 32"), "user"),
        (FileNotFoundError(errno.ENOENT, "missing", "x.jpg"), "user"),
        (ReportWriteError("cannot write the report"), "failed"),
        (TrainingError("no finite loss"), "failed"),
        (OSError(errno.ENOSPC, "No space left on device"), "failed"),
        (Cancelled(), "cancelled"),
        (KeyError("oops"), "bug"),
        (ZeroDivisionError(), "bug"),
    ],
)
def test_classify(exc, kind):
    assert errors.classify(exc) == kind


def test_every_library_error_is_an_ncl_error():
    for cls in (ImageReadError, DatasetError, ModelFileError, DeviceError, ReportError):
        assert issubclass(cls, errors.UserError)
    for cls in (TrainingError, ReportWriteError):
        assert issubclass(cls, errors.RunFailed)
    assert issubclass(Cancelled, errors.NCLError)


def _args(exc: BaseException) -> argparse.Namespace:
    def func(_args):
        raise exc

    return argparse.Namespace(func=func, debug=False)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ImageReadError("a.jpg: not an image"), EXIT_USAGE),
        (ValueError("bad size"), EXIT_USAGE),
        (ReportWriteError("cannot write the report"), EXIT_FAILED),
        (OSError(errno.ENOSPC, "No space left on device"), EXIT_FAILED),
    ],
)
def test_cli_exit_codes_follow_classify(exc, code, capsys):
    assert run(_args(exc)) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(exc) in err


def test_cli_lets_bugs_through():
    with pytest.raises(KeyError):
        run(_args(KeyError("oops")))
