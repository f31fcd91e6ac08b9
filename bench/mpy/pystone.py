# Pystone 1.2's workload (Weicker's Dhrystone in Python, as in MicroPython's perf_bench and
# CPython's old Lib/test/pystone.py), written out here for this repo: the anchor by which the
# benches scale a unix-port CPU figure to an ESP32 estimate (ESP32 about 1,700 pystones/s).
#
#   micropython bench/mpy/pystone.py [LOOPS]     prints {"pystones_per_s": N, "loops": LOOPS}
#
# Runs unchanged on CPython. The best of three runs is reported (least disturbed).
import json
import sys
import time

try:
    _ns = time.time_ns
except AttributeError:  # pragma: no cover

    def _ns():
        return int(time.time() * 1e9)


IDENT1, IDENT2, IDENT3, IDENT4, IDENT5 = 1, 2, 3, 4, 5


class Record:
    def __init__(self, ptr=None, discr=0, enum=0, intcomp=0, string=0):
        self.ptr = ptr
        self.discr = discr
        self.enum = enum
        self.intcomp = intcomp
        self.string = string

    def copy(self):
        return Record(self.ptr, self.discr, self.enum, self.intcomp, self.string)


int_glob = 0
bool_glob = False
char1 = "\0"
char2 = "\0"
array1 = [0] * 51
array2 = [[0] * 51 for _ in range(51)]
ptr_glob = None
ptr_next = None


def proc0(loops):
    global ptr_glob, ptr_next, bool_glob
    t = _ns()
    for _ in range(loops):
        pass
    null = _ns() - t
    ptr_next = Record()
    ptr_glob = Record()
    ptr_glob.ptr = ptr_next
    ptr_glob.discr = IDENT1
    ptr_glob.enum = IDENT3
    ptr_glob.intcomp = 40
    ptr_glob.string = "DHRYSTONE PROGRAM, SOME STRING"
    s1 = "DHRYSTONE PROGRAM, 1'ST STRING"
    array2[8][7] = 10
    t = _ns()
    for _ in range(loops):
        proc5()
        proc4()
        i1 = 2
        i2 = 3
        s2 = "DHRYSTONE PROGRAM, 2'ND STRING"
        enum = IDENT2
        bool_glob = not func2(s1, s2)
        while i1 < i2:
            i3 = 5 * i1 - i2
            i3 = proc7(i1, i2)
            i1 = i1 + 1
        proc8(array1, array2, i1, i3)
        ptr_glob = proc1(ptr_glob)
        ch = "A"
        while ch <= char2:
            if enum == func1(ch, "C"):
                enum = proc6(IDENT1)
            ch = chr(ord(ch) + 1)
        i3 = i2 * i1
        i2 = i3 // i1
        i2 = 7 * (i3 - i2) - i1
        i1 = proc2(i1)
    bench = _ns() - t - null
    return loops * 1e9 / bench if bench > 0 else 0.0


def proc1(p):
    p.ptr = nxt = ptr_glob.copy()
    p.intcomp = 5
    nxt.intcomp = p.intcomp
    nxt.ptr = p.ptr
    nxt.ptr = proc3(nxt.ptr)
    if nxt.discr == IDENT1:
        nxt.intcomp = 6
        nxt.enum = proc6(p.enum)
        nxt.ptr = ptr_glob.ptr
        nxt.intcomp = proc7(nxt.intcomp, 10)
    else:
        p = nxt.copy()
    nxt.ptr = None
    return p


def proc2(io):
    loc = io + 10
    while True:
        if char1 == "A":
            loc = loc - 1
            io = loc - int_glob
            enum = IDENT1
        if enum == IDENT1:
            break
    return io


def proc3(out):
    global int_glob
    if ptr_glob is not None:
        out = ptr_glob.ptr
    else:
        int_glob = 100
    ptr_glob.intcomp = proc7(10, int_glob)
    return out


def proc4():
    global char2
    b = char1 == "A"
    b = b or bool_glob
    char2 = "B"


def proc5():
    global char1, bool_glob
    char1 = "A"
    bool_glob = False


def proc6(e):
    out = e
    if not func3(e):
        out = IDENT4
    if e == IDENT1:
        out = IDENT1
    elif e == IDENT2:
        out = IDENT1 if int_glob > 100 else IDENT4
    elif e == IDENT3:
        out = IDENT2
    elif e == IDENT4:
        pass
    elif e == IDENT5:
        out = IDENT3
    return out


def proc7(a, b):
    loc = a + 2
    return b + loc


def proc8(a1, a2, i1, i2):
    global int_glob
    loc = i1 + 5
    a1[loc] = i2
    a1[loc + 1] = a1[loc]
    a1[loc + 30] = loc
    for i in range(loc, loc + 2):
        a2[loc][i] = loc
    a2[loc][loc - 1] = a2[loc][loc - 1] + 1
    a2[loc + 20][loc] = a1[loc]
    int_glob = 5


def func1(c1, c2):
    loc1 = c1
    loc2 = loc1
    return IDENT1 if loc2 != c2 else IDENT2


def func2(s1, s2):
    loc = 1
    while loc <= 1:
        if func1(s1[loc], s2[loc + 1]) == IDENT1:
            ch = "A"
            loc = loc + 1
    if ch >= "W" and ch <= "Z":
        loc = 7
    if ch == "X":
        return True
    if s1 > s2:
        loc = loc + 7
        return True
    return False


def func3(e):
    return e == IDENT3


if __name__ == "__main__":
    loops = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    best = max(proc0(loops) for _ in range(3))
    print(json.dumps({"pystones_per_s": int(best), "loops": loops}))
