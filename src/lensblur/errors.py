"""Error classes.

Every mistake a user can make raises a subclass of :class:`LensblurError`. The message names the argument,
what was expected, what came, and how to fix it; the command line prints it without a traceback.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "LensblurError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ShapeError",
    "check_integer",
    "check_learning_rate",
]


class LensblurError(Exception):
    """Base class of the errors lensblur raises on purpose."""


class InputError(LensblurError, ValueError):
    """A value given by the user is not acceptable.

    Build it from its parts so that every message has the same shape::

        InputError("blur", expected="a number >= 0", got=-3, fix="pass the CoC scale in pixels, e.g. blur=30")

    ``argument`` is the name of the Python argument (``focus_disparity``, not a command-line flag), and a
    fix that suggests a value writes it as ``name=value`` (``blur=30``, ``point=(812, 430)``); the command
    line reports both under its own flags.

    Args:
        argument: the Python argument the value was given as.
        expected: what would have been accepted.
        got: what came (a string is shown as it is, anything else by ``repr``).
        fix: how to fix it, or None.
    """

    def __init__(self, argument: str, *, expected: str, got: object, fix: str | None = None):
        self.argument = argument
        self.expected = expected
        self.got = got
        self.fix = fix
        got_text = got if isinstance(got, str) else repr(got)
        message = f"{argument}: expected {expected}, got {got_text}."
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)

    def __reduce__(self):  # keyword-only arguments: rebuilt from them when sent to or from a worker process
        return _rebuild, (type(self), (self.argument,), {"expected": self.expected, "got": self.got, "fix": self.fix})


class ShapeError(InputError):
    """An array or tensor has the wrong shape."""


class ModelNotFoundError(LensblurError, FileNotFoundError):
    """Model weights were not found where lensblur looked.

    Args:
        what: what was looked for (``"depth model 'x'"``).
        looked_in: the places searched.
        how_to_get: how to obtain the weights.
    """

    def __init__(self, what: str, *, looked_in: list[str] | tuple[str, ...], how_to_get: str):
        self.what = what
        self.looked_in = list(looked_in)
        self.how_to_get = how_to_get
        places = "\n".join(f"  - {p}" for p in self.looked_in) or "  (nowhere)"
        super().__init__(f"{what} not found. Looked in:\n{places}\nTo get it: {how_to_get}")

    def __reduce__(self):
        return _rebuild, (type(self), (self.what,), {"looked_in": self.looked_in, "how_to_get": self.how_to_get})


class MissingDependencyError(LensblurError, ImportError):
    """An optional package is needed for the feature that was asked for.

    Args:
        package: the package's import name.
        extra: the ``lensblur[extra]`` that installs it.
        feature: what needs it, as the start of a sentence.
    """

    def __init__(self, package: str, *, extra: str, feature: str):
        self.package = package
        self.extra = extra
        self.feature = feature
        super().__init__(
            f"{feature} needs the package '{package}', which is not installed. "
            f"Fix: pip install 'lensblur[{extra}]'"
        )

    def __reduce__(self):
        return _rebuild, (type(self), (self.package,), {"extra": self.extra, "feature": self.feature})


def _rebuild(cls, args: tuple, kwargs: dict):
    """An error of ``cls`` made again from its arguments (unpickling)."""
    return cls(*args, **kwargs)


def check_integer(argument: str, value: object, low: int, *, fix: str | None = None) -> None:
    """Refuse anything but a Python ``int`` >= ``low`` (not a bool; not a numpy integer, which the JSON of run
    records cannot hold), in the one shape every setting's check uses: ``steps: expected an integer >= 1, got 0.
    Fix: ...``.

    Raises:
        InputError: ``value`` is not an integer, or is below ``low``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(argument, expected=f"an integer >= {low}", got=value, fix=fix)


def check_learning_rate(value: object, *, default: float) -> None:
    """Refuse a learning rate that is not a finite number > 0 (torch's optimisers refuse a negative one from deep
    inside, and train nothing at 0): ``lr: expected a finite number > 0, got -1. Fix: lr=0.0002``.

    Raises:
        InputError: ``value`` is not a finite number > 0.
    """
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError("lr", expected="a finite number > 0", got=value, fix=f"lr={default:g}")
