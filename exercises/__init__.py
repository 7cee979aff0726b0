"""Your exercises: small ones, each with one ``TODO`` for you to write.

Work on them in order; each names the notebook that teaches it.  The checker
shows where you are::

    python -m exercises            every exercise's status, and what fails in the next one
    python -m exercises 02         run the tests of exercise 02 only
    python -m exercises --watch    run the exercise you are on again each time you save it
    python -m exercises --hint     a hint for the exercise you are on (again: the next level)

Each ``exNN_name.py`` here was generated from the reference answer in
``solutions/exNN_name.py`` by ``tools/make_exercises.py``; the tests in
``tests/exercises/`` check either.  Edit the files here freely: they are yours.
``ex21_capstone_server`` puts your pieces together into a chat server that
the conformance tester (``python -m conformance``) checks; the ones after it
are pieces of the extensions (notebook 10 and later).
"""
