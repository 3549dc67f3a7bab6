"""The demo family: a tiny job a user can watch converge in seconds (and tests can run)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.demo import cli
from methods.plugin import Command, Family, JobSpec
from render.options import option


@dataclass(frozen=True)
class FitImageOptions:
    steps: int = option(600, min=1, max=100_000, help="optimisation steps")
    size: int = option(64, label="image size", min=8, max=512, help="side of the procedural target image (px)")


def _fit_job(o: FitImageOptions):
    from methods.demo.jobs import FitImageJob

    return FitImageJob(steps=int(o.steps), size=int(o.size))


FAMILY = Family(
    name="demo",
    title="Demo",
    commands=(Command(("train", "demo"), "fit a tiny MLP to a procedural image (a CPU job of seconds)",
                      cli.add_arguments, cli.run),),
    jobs=(JobSpec("Fit tiny MLP to an image (demo)", FitImageOptions, _fit_job,
                  help="a small CPU job that streams loss, PSNR and previews"),),
    order=90,
)
