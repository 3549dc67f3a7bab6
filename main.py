"""mipstudio: no command opens the studio; the commands (declared by the method families in
methods/<family>/plugin.py) run the same work headless.

examples:
  python main.py                                  # the studio (needs a display; xvfb-run works)
  python main.py dataset --preset tiny --out data/tiny
  python main.py train gaussians --config cpu_small --variant mip
  python main.py render mesh --zoom 0.125 --filter nearest --out fish.png
  python main.py eval ngssf astronaut --json ngssf.json
  python main.py info                             # device, GL renderer, versions, families
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
# The studio (and `walk`, a window too): idle OpenMP threads sleep instead of spinning (with the UI thread busy on one
# core, spinning made torch ~30x slower). A headless command (a first argument that is not a flag) has no UI thread:
# spinning threads are faster there (a GaussianSR training step: 0.30 s instead of 0.45 s on 2 cores).
_HEADLESS = len(sys.argv) > 1 and not sys.argv[1].startswith("-") and sys.argv[1] != "walk"
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE" if _HEADLESS else "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

GROUPS = {"train": "run a training job with a progress bar", "render": "render to image or mesh files",
          "eval": "benchmarks that print tables (and write --json)",
          "finetune": "finetune trained models with a progress bar (Mipmap-GS levels)",
          "edit": "replay recorded edits on a model file (the splat editor's ops files)"}


def _fail(message: str, code: int = 1) -> int:
    print(f"mipstudio: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    """GUI flags, then every family's commands: a path ("train", "x") goes under the ``train`` group."""
    from app.cli import COMMANDS, add_gui_arguments, run_gui
    from methods.cli import HelpFormatter, OneLineParser
    from methods.plugin import FAMILY_ERRORS, discover_families

    top, doc = __doc__.split("\n\n", 1)
    p = OneLineParser(prog="mipstudio", description=top, epilog=doc, formatter_class=HelpFormatter)
    add_gui_arguments(p)
    p.set_defaults(func=run_gui)
    subs = {(): p.add_subparsers(title="commands", metavar="COMMAND", help="run `mipstudio COMMAND --help`")}

    def under(prefix: tuple[str, ...]):  # the subparsers action that holds the commands below ``prefix``
        if prefix not in subs:
            parent = under(prefix[:-1])
            if prefix[-1] in parent.choices:
                raise ValueError(f"'{prefix[-1]}' is already a command, not a group")
            g = parent.add_parser(prefix[-1], help=GROUPS.get(prefix[-1], ""), formatter_class=HelpFormatter,
                                  description=GROUPS.get(prefix[-1]))
            g.set_defaults(func=lambda a, g=g: (g.print_help(sys.stderr), 2)[1])
            subs[prefix] = g.add_subparsers(title="what", metavar="WHAT", help=f"run `mipstudio {' '.join(prefix)}"
                                                                               f" WHAT --help`")
        return subs[prefix]

    for verb in GROUPS:
        under((verb,))
    for family in [*discover_families().values(), None]:
        for cmd in family.commands if family else COMMANDS:
            try:  # a broken declaration costs its own command only
                cmd.add_arguments(argparse.ArgumentParser(add_help=False))
                parent = under(tuple(cmd.path[:-1]))
                if cmd.path[-1] in parent.choices:
                    raise ValueError("another family already declares it")
            except Exception as e:  # noqa: BLE001
                _fail(f"command '{' '.join(cmd.path)}' of {family.name if family else 'app'} skipped: {e}", 0)
                continue
            c = parent.add_parser(cmd.path[-1], help=cmd.help, description=cmd.description or cmd.help,
                                  formatter_class=HelpFormatter)
            cmd.add_arguments(c)
            c.set_defaults(func=cmd.run)
    for module, reason in FAMILY_ERRORS.items():
        _fail(f"plugin {module} not loaded: {reason}", 0)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) and argparse errors (2: the message names the flag)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except (ValueError, OSError) as e:  # bad input (CheckpointError is a ValueError): one line, no traceback
        return _fail(str(e) or type(e).__name__)
    except Exception as e:
        from methods.jobs import JobCancelled

        if isinstance(e, JobCancelled):  # a cancelled job is not a crash
            return _fail("cancelled", 130)
        raise


if __name__ == "__main__":
    sys.exit(main())
