"""Your exercises: one module per notebook, each with a ``TODO`` for you to write.

Work on them in order.  The checker shows where you are::

    python -m exercises            every exercise's status, and what fails in the next one
    python -m exercises 02         run the tests of exercise 02 only
    python -m exercises --hint     a hint for the exercise you are on (or --hint 02)

Each ``exNN_name.py`` here was generated from the reference answer in
``solutions/exNN_name.py`` by ``tools/make_exercises.py``; the tests in
``tests/exercises/`` check either.  Edit the files here freely: they are yours.
"""
