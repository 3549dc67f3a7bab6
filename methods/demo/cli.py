"""``main.py train demo``: fit the tiny Fourier-feature MLP to a procedural image with a progress bar."""
from __future__ import annotations

import argparse

from methods.cli import positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=positive_int, default=300, help="optimisation steps")
    p.add_argument("--size", type=positive_int, default=48, help="side of the procedural target image in pixels")


def run(args: argparse.Namespace) -> int:
    from methods.demo.jobs import FitImageJob
    from methods.jobs import run_headless

    print(run_headless(FitImageJob(steps=args.steps, size=args.size)))  # {'psnr': ..., 'steps': ...}
    return 0
