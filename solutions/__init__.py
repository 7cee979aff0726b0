"""Reference solutions to the exercises, one module per exercise.

Each ``exNN_name.py`` here is complete and commented.  The learner's files in
``exercises/`` are generated from these by ``tools/make_exercises.py``: the
code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a
``TODO`` and a ``raise NotImplementedError``.  Try the exercise before you read
its solution; ``python -m exercises --hint`` is the gentler way to get unstuck.
"""
