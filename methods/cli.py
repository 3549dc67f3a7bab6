"""Shared pieces of the headless commands the method families declare (``methods/<family>/cli.py``).

Argument types here turn bad input into argparse errors that name the flag and the expected form
(``argument --size: expected WxH such as 512x512, got 'abc'``), so a typo fails before any work starts, with
exit status 2. Nothing here imports torch: ``main.py --help`` builds every family's parser.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable, Iterable, NoReturn

__all__ = ["HelpFormatter", "parse_wxh", "size_arg", "optional_size_arg", "positive_float", "positive_int",
           "non_negative_int", "comma_list"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the flag and what is wrong) instead of usage + error: every
    bad input in the project is one line, argparse's too. ``--help`` still prints the full usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every parser's formatter: shows each option's default, keeps descriptions/epilogs as written.

    Defaults that mean "not given" ("", None, False) are not printed: the help text says what happens then."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 32,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        d = action.default
        if d is None or d is False or (isinstance(d, (str, list, tuple)) and not d):
            return action.help
        return super()._get_help_string(action)


def parse_wxh(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480); anything else raises a ValueError saying what the form is."""
    parts = text.strip().lower().split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected WxH such as 512x512, got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"expected a positive WxH such as 512x512, got {text!r}")
    return w, h


def size_arg(text: str) -> tuple[int, int]:
    """argparse ``type=`` for a WxH size."""
    try:
        return parse_wxh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def optional_size_arg(text: str) -> tuple[int, int] | None:
    """argparse ``type=`` for a WxH size where "" means "not given" (None)."""
    return size_arg(text) if text.strip() else None


def positive_float(text: str) -> float:
    """argparse ``type=`` for a finite number > 0 (zoom, scale)."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number such as 0.5 or 2, got {text!r}")
    return v


def _int_at_least(lo: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _int_at_least(1, "an integer >= 1")
non_negative_int = _int_at_least(0, "an integer >= 0")


def comma_list(valid: Callable[[], Iterable[str]]) -> Callable[[str], tuple[str, ...]]:
    """argparse ``type=`` for "a,b" where every item must be one of ``valid()`` (called when the flag is parsed,
    so a registry that needs heavy imports is loaded only by the command that uses it)."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(v.strip() for v in text.split(",") if v.strip())
        known = tuple(valid())
        bad = [v for v in items if v not in known]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(known)}; "
                                             f"got {text!r}")
        return items

    parse.__name__ = "comma_list"
    return parse
