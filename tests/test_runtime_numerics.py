"""helpers.runtime.numerics: which variables are pinned, when, and what a process runs with."""

import os
import subprocess
import sys

import helpers
from helpers.runtime import numerics

import pytest

AVX2_CPU = {"avx", "avx2", "fma", "sse4_1"}


def test_pinned_profile_fills_in_every_variable_on_x86():
    env = {}
    applied = numerics.pin(env)
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" or applied["OPENBLAS_CORETYPE"][0] is None
    assert set(numerics.PROFILES["pinned"]) | set(numerics.ALWAYS) == set(applied)
    assert env["TF_NUM_INTRAOP_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"


def test_a_forced_kernel_comes_with_its_l2_size():
    for profile, kernel, l2 in (
        ("pinned", "Haswell", "262144"),
        ("alternate", "Sandybridge", "1048576"),
    ):
        applied = numerics.plan(
            {numerics.PROFILE_VARIABLE: profile}, machine="x86_64", cpu_flags=AVX2_CPU
        )
        assert applied["OPENBLAS_CORETYPE"][0] == kernel
        assert applied["OPENBLAS_L2_SIZE"] == (l2, f"profile {profile}")
    both = {"OPENBLAS_CORETYPE": "Zen", "OPENBLAS_L2_SIZE": "524288"}
    applied = numerics.plan(both, machine="x86_64", cpu_flags=AVX2_CPU)
    assert applied["OPENBLAS_L2_SIZE"] == ("524288", "environment")


def test_values_already_in_the_environment_are_kept():
    env = {"OPENBLAS_CORETYPE": "Zen", "TF_NUM_INTRAOP_THREADS": "8"}
    applied = numerics.plan(env, machine="x86_64", cpu_flags=AVX2_CPU)
    assert applied["OPENBLAS_CORETYPE"] == ("Zen", "environment")
    # the profile's L2 size belongs to the profile's kernel, not to the environment's
    assert applied["OPENBLAS_L2_SIZE"][0] is None
    assert applied["TF_NUM_INTRAOP_THREADS"] == ("8", "environment")
    assert applied["ONEDNN_MAX_CPU_ISA"] == ("AVX2", "profile pinned")


def test_alternate_profile_is_below_the_pinned_one_and_differs_everywhere():
    pinned = numerics.plan({}, machine="x86_64", cpu_flags=AVX2_CPU)
    alternate = numerics.plan(
        {numerics.PROFILE_VARIABLE: "alternate"}, machine="x86_64", cpu_flags=AVX2_CPU
    )
    assert alternate["ONEDNN_MAX_CPU_ISA"][0] == "AVX"
    for var in numerics.PROFILES["pinned"]:
        assert alternate[var][0] != pinned[var][0], var


def test_no_profile_pins_nothing_but_keeps_tensorflow_quiet():
    applied = numerics.plan(
        {numerics.PROFILE_VARIABLE: "none"}, machine="x86_64", cpu_flags=AVX2_CPU
    )
    assert set(applied) == set(numerics.ALWAYS)


def test_a_kernel_the_cpu_cannot_run_is_never_forced():
    applied = numerics.plan({}, machine="x86_64", cpu_flags={"sse4_1", "avx"})
    assert applied["OPENBLAS_CORETYPE"][0] is None
    assert "lacks avx2 fma" in applied["OPENBLAS_CORETYPE"][1]
    assert applied["OPENBLAS_L2_SIZE"][0] is None
    assert applied["ONEDNN_MAX_CPU_ISA"][0] == "AVX2"  # a cap, safe on any CPU


def test_x86_only_variables_are_left_alone_on_arm():
    applied = numerics.plan({}, machine="aarch64", cpu_flags=set())
    for var in (
        "ONEDNN_MAX_CPU_ISA",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "NPY_DISABLE_CPU_FEATURES",
    ):
        assert applied[var][0] is None and "x86-64 only" in applied[var][1]
    assert applied["TF_NUM_INTRAOP_THREADS"][0] == "1"


def test_unknown_profile_is_one_clear_error():
    with pytest.raises(
        numerics.NumericsError, match="'fast' is not a numerics profile; use one of pinned"
    ):
        numerics.plan({numerics.PROFILE_VARIABLE: "fast"})


def test_this_process_was_pinned_on_import():
    assert helpers.runtime.numerics.STATUS
    for var, (value, _) in numerics.STATUS.items():
        assert value is None or os.environ[var] == value


def _run(code, env_extra):
    """Run Python code (or a list of interpreter arguments) with the pins left unset."""
    env = {k: v for k, v in os.environ.items() if k not in numerics.PROFILES["pinned"]}
    env.update(env_extra)
    args = ["-c", code] if isinstance(code, str) else code
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.integration
def test_tensorflow_really_sizes_its_thread_pool_from_the_pin():
    code = (
        "import helpers, os, tensorflow as tf; "
        "tf.matmul(tf.ones((300, 300)), tf.ones((300, 300))).numpy(); "
        "print(len(os.listdir('/proc/self/task')))"
    )
    threads = {}
    for n in (1, 6):
        run = _run(code, {"TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": "1"})
        assert run.returncode == 0, run.stderr
        threads[n] = int(run.stdout.split()[-1])
    assert threads[6] - threads[1] == 5  # one more pool thread per extra intra-op thread


@pytest.mark.integration
def test_command_line_runs_a_command_under_the_pins_and_shows_them():
    shown = _run(
        "import runpy, sys; sys.argv = ['helpers']; runpy.run_module('helpers', "
        "run_name='__main__')",
        {numerics.PROFILE_VARIABLE: "alternate"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "TF_NUM_INTRAOP_THREADS" in shown.stdout and "profile alternate" in shown.stdout
    env = {k: v for k, v in os.environ.items() if k not in numerics.PROFILES["pinned"]}
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers",
            "--",
            sys.executable,
            "-c",
            "import os; print(os.environ['OPENBLAS_NUM_THREADS'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "1", ran.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "helpers", "--", "no-such-command-here"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 127 and "cannot run 'no-such-command-here'" in bad.stderr


@pytest.mark.integration
def test_importing_numpy_first_is_warned_about():
    code = "import numpy, warnings; warnings.simplefilter('always'); import helpers"
    late = _run(code, {})
    assert "numpy was imported before helpers" in late.stderr
    quiet = _run("import helpers, numpy", {})
    assert "imported before helpers" not in quiet.stderr


@pytest.mark.parametrize(
    "numpy_version, above_avx2",
    [
        ("2.0.2", "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX"),
        ("2.3.5", "AVX512_ICL AVX512_SPR"),
        ("2.4.6", "X86_V4 AVX512_ICL AVX512_SPR"),
        ("2.5.0rc1", "X86_V4"),
    ],
)
def test_numpy_targets_are_named_as_each_numpy_names_them(numpy_version, above_avx2):
    for profile, level in (("pinned", "above"), ("alternate", "avx2")):
        env = {numerics.PROFILE_VARIABLE: profile}
        names = numerics.plan(
            env, machine="x86_64", cpu_flags=AVX2_CPU, numpy_version=numpy_version
        )["NPY_DISABLE_CPU_FEATURES"][0].split()
        assert set(above_avx2.split()) <= set(names)
        old_naming = numpy_version < "2.4"
        assert ("AVX2" in names) == (old_naming and level == "avx2")
        assert ("X86_V3" in names) == (not old_naming and level == "avx2")
        assert not old_naming or not {"X86_V3", "X86_V4"} & set(names)
    assert ("AVX512_SPR" in names) == (numpy_version >= "2.3")


@pytest.mark.integration
@pytest.mark.parametrize("profile", ["pinned", "alternate"])
def test_the_installed_numpy_accepts_every_target_it_is_given(profile):
    code = (
        "import helpers, os, numpy as np; m = np._core._multiarray_umath; "
        "off = os.environ['NPY_DISABLE_CPU_FEATURES'].split(); "
        "assert set(off) <= set(m.__cpu_dispatch__), off; "
        "assert not any(m.__cpu_features__[t] for t in off); print(len(off))"
    )
    run = _run(["-W", "error::ImportWarning", "-c", code], {numerics.PROFILE_VARIABLE: profile})
    assert run.returncode == 0, run.stderr
