"""The synthesised stack for every infra test module: test_stack.py defines how it is built and read;
its session fixtures are shared from here (the synth runs once per test run, see its docstring)."""

from tests.infra.test_stack import synth, template  # noqa: F401
