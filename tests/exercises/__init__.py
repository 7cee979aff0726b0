"""Tests of the exercises: the reference solutions by default, your code with --exercises."""
