"""The mutation fuzzer of the core (fuzz.py) in CI: 100,000 inputs under CPython, 3,000 under
MicroPython, every invariant checked after every input, then the timers drained.

It prints inputs per second (pytest -s shows it). A failure lists each broken invariant once,
with its traceback and the input that broke it; bench/fuzz_bench.py is the long run, and
fuzz.minimise() cuts a failing run down to a reproducer.
"""

from _support import IS_MICROPYTHON, SkipTest
from fuzz import campaign, failure_text

INPUTS = 3000 if IS_MICROPYTHON else 100000


def test_fuzz_invariants_hold():
    f, fig = campaign(INPUTS, seed=1)
    print(
        "fuzz: %d inputs, %.0f inputs/s, %.1f s, heap %s start %d, drained %d -> %d (allowed +%d, judged %s), sizes %s"
        % (
            fig["inputs"],
            fig["rate"],
            fig["seconds"],
            fig["heap_unit"],
            fig["heap_start"],
            fig["heap_base"],
            fig["heap_end"],
            fig["heap_allowed"],
            fig["heap_judged"],
            fig["sizes"],
        )
    )
    print(f.report())
    assert f.inputs >= INPUTS
    if f.failures:  # each broken invariant once, with its traceback and input
        raise AssertionError(failure_text(f))


def test_fuzz_second_seed_short():
    # another walk through the same corpus: different mutations, addresses and timing
    if IS_MICROPYTHON:
        raise SkipTest("one run is enough at the WebAssembly port's speed")
    f, fig = campaign(INPUTS // 10, seed=7)
    print("fuzz seed 7: %d inputs, %.0f inputs/s" % (fig["inputs"], fig["rate"]))
    if f.failures:
        raise AssertionError(failure_text(f))
