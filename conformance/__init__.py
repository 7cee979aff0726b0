"""A conformance tester for chat servers: ``python -m conformance HOST PORT``.

It checks, from the outside, that a server speaks the chat protocol v1
(README, "The protocol"): newline-delimited JSON frames, ``join``/``chat``/
``ping`` in, ``welcome``/``chat``/``user_joined``/``user_left``/``error``/
``pong`` out.  It only opens TCP connections, so the server may be written in
any language.  Like the testers of CodeCrafters, it works in stages, each a
little harder than the one before:

1. connect and join -- the welcome lists you; a ping gets a pong
2. broadcast        -- joins and leaves announced; every chat reaches everyone,
   the sender included, in one order
3. framing          -- a frame sent a byte at a time, two frames in one send, a
   UTF-8 character cut between two sends
4. errors           -- bad JSON, a non-object, an unknown type, a chat before
   joining, a name that is taken: an error frame, and the connection goes on
5. concurrency      -- 20 clients race for one name: exactly one wins; 8 clients
   talk at once: nothing lost, nothing reordered
6. robustness       -- bytes that are not UTF-8, an endless line, and a client
   that never reads: the others keep chatting

Each stage prints ``pass`` or ``FAIL`` with a one-line reason that names the
likely mistake.  ``--stage N`` runs stages 1 to N; the exit status is 0 only if
every stage run passed.  From Python::

    from conformance import run
    results = run(("127.0.0.1", 12345), up_to=6)
    assert all(r.passed for r in results)

This package is a tool beside the course, like the load generator in
``benchmarks/``; it is not part of ``chat`` and uses only the standard library.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from conformance.peer import StageFailure
from conformance.stages import STAGES, Session, Stage

__all__ = ["STAGES", "StageResult", "format_result", "run", "run_stage"]


@dataclass(frozen=True)
class StageResult:
    number: int
    title: str
    passed: bool
    reason: str  # why it failed; empty when it passed
    seconds: float


def run_stage(
    stage: Stage,
    address: tuple[str, int],
    timeout: float = 5.0,
    log: Callable[[str], None] | None = None,
) -> StageResult:
    """Run one stage against the server at ``address``."""
    session = Session(address, timeout, log)
    started = time.monotonic()
    try:
        with session.stage():
            stage.run(session)
    except StageFailure as exc:
        reason = session.reason(exc)
    except OSError as exc:  # anything the stage did not foresee, said plainly
        reason = session.reason(StageFailure(f"a connection failed: {exc.strerror or exc}"))
    else:
        return StageResult(stage.number, stage.title, True, "", time.monotonic() - started)
    return StageResult(stage.number, stage.title, False, reason, time.monotonic() - started)


def run(
    address: tuple[str, int],
    up_to: int = len(STAGES),
    timeout: float = 5.0,
    *,
    log: Callable[[str], None] | None = None,
    report: Callable[[StageResult], None] | None = None,
) -> list[StageResult]:
    """Run stages 1 to ``up_to``; ``report`` is called with each result as it comes."""
    results = []
    for stage in STAGES[:up_to]:
        result = run_stage(stage, address, timeout, log)
        if report is not None:
            report(result)
        results.append(result)
    return results


def format_result(result: StageResult) -> str:
    """One line: ``stage 3  framing            FAIL  the second of two frames ...``."""
    head = f"stage {result.number}  {result.title:<17}"
    if result.passed:
        return f"{head}pass  ({result.seconds:.1f} s)"
    return f"{head}FAIL  {result.reason}"
