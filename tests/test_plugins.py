"""The CLI is assembled from the method families' plugins: every option documented, a new family appears without
editing a shared file, a broken one costs only itself, and bad flags are argparse errors naming the flag."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import main
from methods.plugin import FAMILY_ERRORS, all_jobs, discover_families

ROOT = Path(__file__).resolve().parents[1]
JOB_NAMES = ("Generate synthetic dataset", "Fit tiny MLP to an image (demo)", "Train NGSSF scale-space field",
             "Train Gaussian splatting (3DGS / Mip-Splatting)")


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every parser of the tree with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _subprocess(*args: str, plugins: str = "", pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MIPSTUDIO_PLUGINS": plugins}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


# ----- the parser tree ------------------------------------------------------------------------------------------
def test_every_option_of_every_command_has_help_and_shows_its_default():
    tree = dict(_parsers(main.build_parser()))
    for path in [("train", w) for w in ("gaussians", "ngssf", "demo")] + [
            ("render", w) for w in ("mesh", "gaussians", "ngssf")] + [
            ("eval", "gaussians"), ("eval", "ngssf"), ("dataset",), ("export-demo-ply",), ("info",)]:
        assert path in tree, f"missing command {' '.join(path)}"
    for path, parser in tree.items():
        assert isinstance(parser.formatter_class, type) and issubclass(
            parser.formatter_class, argparse.ArgumentDefaultsHelpFormatter), path
        text = " ".join(parser.format_help().split())  # also catches a stray % in a help string
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{' '.join(path) or 'mipstudio'} {'/'.join(action.option_strings) or action.dest}"
            assert isinstance(action.help, str) and action.help.strip(), f"{where}: no help"
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help and choice.help.strip(), f"{where} {choice.dest}: no help"
            d = action.default
            if not (d is None or d is False or isinstance(d, str) and not d or d == argparse.SUPPRESS):
                assert f"(default: {d})" in text, f"{where}: default {d!r} not shown"


def test_preset_choices_come_from_the_registries():
    from assets.synthetic_scene import PRESETS
    from methods.gaussians.config import METHODS, TRAIN_PRESETS as GS_PRESETS
    from methods.ngssf.config import TRAIN_PRESETS as NG_PRESETS

    tree = dict(_parsers(main.build_parser()))

    def choices(path, flag):
        (action,) = [a for a in tree[path]._actions if flag in a.option_strings]
        return tuple(action.choices)

    for verb in ("train", "eval"):
        assert choices((verb, "gaussians"), "--config") == tuple(GS_PRESETS)
        assert choices((verb, "gaussians"), "--preset") == tuple(PRESETS)
        assert choices((verb, "ngssf"), "--config") == tuple(NG_PRESETS)
    assert choices(("train", "gaussians"), "--variant") == tuple(METHODS)
    assert choices(("dataset",), "--preset") == tuple(PRESETS)


def test_help_is_fast_because_building_the_parser_loads_no_torch():
    code = "import sys, main; main.build_parser(); print(sorted(m for m in ('torch', 'dearpygui', 'moderngl') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("verb, valid", [("train", ("gaussians", "ngssf", "demo")),
                                         ("render", ("mesh", "gaussians", "ngssf")),
                                         ("eval", ("gaussians", "ngssf"))])
def test_unknown_method_is_an_argparse_error_listing_the_choices(verb, valid, capsys):
    assert main.main([verb, "foo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"mipstudio {verb}: error:") and "invalid choice: 'foo'" in err
    assert all(f"'{v}'" in err for v in valid), err


@pytest.mark.parametrize("verb", ["train", "render", "eval"])
def test_a_group_without_a_method_prints_its_help_and_exits_2(verb, capsys):
    assert main.main([verb]) == 2
    assert f"usage: mipstudio {verb}" in capsys.readouterr().err


# ----- one-line messages naming the flag --------------------------------------------------------------------------
@pytest.mark.parametrize("argv, flag, expected", [
    (["render", "ngssf", "astronaut", "--cov", "abc", "--out", "x.png"], "--cov", "expected a variance"),
    (["render", "ngssf", "astronaut", "--cov", "1,2", "--out", "x.png"], "--cov", "upper triangle"),
    (["render", "ngssf", "astronaut", "--cov", "-1", "--out", "x.png"], "--cov", "cannot be negative"),
    (["render", "ngssf", "astronaut", "--cov", "1,2,1", "--out", "x.png"], "--cov", "positive semi-definite"),
    (["render", "mesh", "--size", "abc"], "--size", "expected WxH such as 512x512, got 'abc'"),
    (["render", "gaussians", "--ply", "a.ply", "--cameras", "c.json", "--out", "o", "--size", "abc"], "--size",
     "expected WxH"),
    (["--size", "abc"], "--size", "expected WxH"),
    (["render", "mesh", "--zoom", "0"], "--zoom", "expected a positive number"),
    (["render", "mesh", "--zoom", "-0.5"], "--zoom", "expected a positive number"),
    (["render", "gaussians", "--ply", "a.ply", "--cameras", "c.json", "--out", "o", "--zoom", "0"], "--zoom",
     "expected a positive number"),
    (["train", "gaussians", "--config", "huge"], "--config", "invalid choice: 'huge'"),
    (["train", "ngssf", "astronaut", "--config", "cpu_small"], "--config", "invalid choice: 'cpu_small'"),
    (["eval", "gaussians", "--settings", "zoom_up"], "--settings", "zoom_out, zoom_in"),
])
def test_bad_flags_fail_before_any_work_with_one_line_naming_the_flag(argv, flag, expected, tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"error: argument {flag}" in err[-1] and expected in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert list(tmp_path.iterdir()) == []


def test_stmt_settings_named_in_the_help_are_the_registry():
    from methods.gaussians.stmt import SETTINGS

    (action,) = [a for a in dict(_parsers(main.build_parser()))[("eval", "gaussians")]._actions
                 if "--settings" in a.option_strings]
    assert all(key in action.help for key in SETTINGS) and action.default == ",".join(SETTINGS)


# ----- export-demo-ply -> render gaussians ------------------------------------------------------------------------
def test_export_demo_ply_writes_a_loadable_ply_that_render_gaussians_renders(tmp_path, capsys):
    from methods.gaussians.ply import load_ply
    from render.camera import Camera

    out = tmp_path / "sub" / "demo.ply"
    assert main.main(["export-demo-ply", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    model = load_ply(out)
    assert model.num_gaussians > 0 and model.filter_3d is not None
    assert [p.name for p in out.parent.iterdir()] == ["demo.ply"]  # no temp file left behind

    cams = [Camera.look_at(eye, (0.0, 0.0, 0.0), fov_x=0.9, width=20, height=16)
            for eye in ((0.0, -3.5, 1.5), (2.5, 2.0, 1.0))]
    doc = {"frames": [{"file_path": f"images/{i}.png", "fl_x": c.fx, "fl_y": c.fy, "cx": c.cx, "cy": c.cy,
                       "w": c.width, "h": c.height, "transform_matrix": c.c2w_opengl().tolist()}
                      for i, c in enumerate(cams)]}
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    renders = tmp_path / "renders"
    assert main.main(["render", "gaussians", "--ply", str(out), "--cameras", str(tmp_path / "transforms.json"),
                      "--out", str(renders), "--zoom", "0.5"]) == 0
    assert "rendered 2 views" in capsys.readouterr().out
    import numpy as np

    img = np.load(renders / "view_0000.npy")
    assert img.shape == (8, 10, 3) and img.std() > 0.01  # the scene is in view, not a blank background

    # the README's fresh-clone example: the demo's own cameras come with it
    cams_file = tmp_path / "demo_cameras.json"
    assert main.main(["export-demo-ply", str(out), "--cameras", str(cams_file)]) == 0
    assert main.main(["render", "gaussians", "--ply", str(out), "--cameras", str(cams_file), "--out",
                      str(tmp_path / "r2"), "--size", "32x32"]) == 0
    assert "rendered 16 views" in capsys.readouterr().out
    first = np.load(tmp_path / "r2" / "view_0000.npy")
    assert first.shape == (32, 32, 3) and first.std() > 0.05

    assert main.main(["export-demo-ply", str(tmp_path)]) == 1  # a folder: one line, nothing written
    assert capsys.readouterr().err.strip().startswith("mipstudio: ")


# ----- jobs ---------------------------------------------------------------------------------------------------
def test_the_families_declare_the_jobs_panel_jobs_with_typed_options():
    from render.options import option_specs

    jobs = all_jobs()
    assert set(JOB_NAMES) <= set(jobs)
    for name in JOB_NAMES:
        specs = option_specs(jobs[name].options)
        assert specs and all(s.meta.help for s in specs), name
    fit = {s.name for s in option_specs(jobs["Fit tiny MLP to an image (demo)"].options)}
    assert fit == {"steps", "size"}
    job = jobs["Fit tiny MLP to an image (demo)"].make_job(steps=3, size=8)
    assert job.run(lambda p: None, lambda: False)["steps"] == 3
    with pytest.raises(ValueError, match="steps"):
        jobs["Fit tiny MLP to an image (demo)"].make_job(steps=0)


def test_job_factories_build_jobs_from_registry_choices():
    from methods.gaussians.config import METHODS, TRAIN_PRESETS
    from render.options import option_specs

    spec = all_jobs()["Train Gaussian splatting (3DGS / Mip-Splatting)"]
    opts = {s.name: s for s in option_specs(spec.options)}
    assert set(opts) == {"dataset", "method", "preset", "iterations", "out_dir"}
    assert opts["method"].meta.choices == tuple(METHODS) and opts["preset"].meta.choices == tuple(TRAIN_PRESETS)
    job = spec.make_job(method="3dgs", preset="test_tiny", iterations=7)  # builds only; no data is loaded
    assert job.config.method == "3dgs" and job.config.iterations == 7 and job.dataset == ""
    assert spec.make_job(method="Mip-Splatting").config.method == "mip"  # a combo label is accepted too
    with pytest.raises(ValueError, match="preset"):
        spec.make_job(preset="huge")

    ngssf = all_jobs()["Train NGSSF scale-space field"].make_job(preset="test_tiny", iterations=5)
    assert ngssf.config.iterations == 5 and ngssf.config.name == "test_tiny" and ngssf.modality == "picture"
    ds = all_jobs()["Generate synthetic dataset"].make_job(preset="tiny", resolution=16, train_views=2)
    assert ds.spec.resolution == 16 and ds.spec.n_train == 2 and ds.overwrite


def test_ngssf_modality_names_match_the_loaders():
    from methods.ngssf.config import MODALITY_NAMES
    from methods.ngssf.modalities import MODALITIES

    assert tuple(MODALITIES) == MODALITY_NAMES


# ----- families outside methods/ ----------------------------------------------------------------------------------
TINYFAM = '''
from dataclasses import dataclass

from methods.plugin import Command, Family, JobSpec
from render.options import option


@dataclass(frozen=True)
class TinyOptions:
    steps: int = option(2, min=1, help="steps of the tiny job")


def _add(p):
    p.add_argument("--times", type=int, default=1, help="how often to greet")


def _run(args):
    for _ in range(args.times):
        print("tinyfam trained OK")
    return 0


def _job(o):
    from methods.demo.jobs import TickJob

    return TickJob(steps=o.steps, delay=0.0)


FAMILY = Family("tinyfam", "Tiny family", commands=(Command(("train", "tinyfam"), "train the tiny family", _add,
                                                            _run),),
                jobs=(JobSpec("Tiny job", TinyOptions, _job),))
'''


def test_a_family_in_its_own_module_adds_a_command_and_a_job_without_editing_shared_files(tmp_path, monkeypatch):
    (tmp_path / "tinyfam.py").write_text(textwrap.dedent(TINYFAM))
    top = _subprocess("--help", plugins="tinyfam", pythonpath=tmp_path)
    assert top.returncode == 0 and top.stderr == "", top.stderr
    train = _subprocess("train", "--help", plugins="tinyfam", pythonpath=tmp_path)
    assert train.returncode == 0 and "tinyfam" in train.stdout and "train the tiny family" in train.stdout
    assert "gaussians" in train.stdout  # the built-in families are still there
    ran = _subprocess("train", "tinyfam", "--times", "2", plugins="tinyfam", pythonpath=tmp_path)
    assert ran.returncode == 0 and ran.stdout.count("tinyfam trained OK") == 2, ran.stdout + ran.stderr
    assert "tinyfam" not in _subprocess("train", "--help").stdout  # only when named in MIPSTUDIO_PLUGINS

    monkeypatch.setenv("MIPSTUDIO_PLUGINS", "tinyfam")  # the Jobs panel sees its job the same way
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "tinyfam" in discover_families()
        job = all_jobs()["Tiny job"].make_job(steps=3)
        assert job.run(lambda p: None, lambda: False) is not None and job.steps == 3
    finally:
        sys.modules.pop("tinyfam", None)


def test_a_broken_family_costs_only_itself(tmp_path):
    (tmp_path / "brokenfam.py").write_text("raise ImportError('brokenfam needs a missing library')\n")
    (tmp_path / "notafam.py").write_text("FAMILY = 42\n")
    (tmp_path / "dupfam.py").write_text(textwrap.dedent('''
        from methods.plugin import Command, Family
        FAMILY = Family("dupfam", "Duplicate", commands=(
            Command(("train", "demo"), "a second 'train demo'", lambda p: None, lambda a: 0),
            Command(("train", "badargs"), "declares a bad option", lambda p: p.add_argument("x", nargs="?!"),
                    lambda a: 0),
            Command(("train", "dupok"), "still fine", lambda p: None, lambda a: print("dupok ran"))))
    '''))
    res = _subprocess("--help", plugins="brokenfam,notafam,dupfam,nosuchmodule", pythonpath=tmp_path)
    assert res.returncode == 0 and "export-demo-ply" in res.stdout, res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 5, err  # one line per problem
    assert all(line.startswith("mipstudio: ") for line in err)
    text = "\n".join(err)
    assert "brokenfam" in text and "needs a missing library" in text and "notafam" in text
    assert "nosuchmodule" in text and "'train demo' of dupfam skipped" in text and "'train badargs'" in text
    ran = _subprocess("train", "dupok", plugins="brokenfam,dupfam", pythonpath=tmp_path)
    assert ran.returncode == 0 and "dupok ran" in ran.stdout
    demo = _subprocess("train", "demo", "--steps", "2", plugins="dupfam", pythonpath=tmp_path)
    assert demo.returncode == 0 and "'steps': 2" in demo.stdout  # the built-in command kept its name


def test_discovery_errors_are_recorded_not_raised(monkeypatch):
    monkeypatch.setenv("MIPSTUDIO_PLUGINS", "no_such_family_module")
    try:
        fams = discover_families()
        assert {"datasets", "sampling", "gaussians", "ngssf", "demo"} <= set(fams)
        assert "No module named 'no_such_family_module'" in FAMILY_ERRORS["no_such_family_module"]
    finally:  # the registry outlives this test; later in-process CLI calls must not report it
        FAMILY_ERRORS.pop("no_such_family_module", None)
