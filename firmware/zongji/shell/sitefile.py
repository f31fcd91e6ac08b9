"""The site bundle on flash, loaded with rollback: a bad sync never leaves the branch without one.

    site, status = load_site(log)     the running Site (or None) and one line saying what happened

Files, relative to the current directory (the flash root "/" on a board, the --flash folder on
the virtual device): site.zjb, the previous one site.prev.zjb (Store.write(..., keep=True)
keeps it), and site.bad.zjb, where a bundle that failed to load is set aside. A bundle fails
when the core's loader refuses it (damaged, wrong hash, an error in the site) or when it does
not fit the heap (MemoryError): then the previous one is restored and runs.
"""

import gc
import os

from zongji.site import bundle, release_loader

SITE = "site.zjb"
PREV = "site.prev.zjb"
BAD = "site.bad.zjb"


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _load(path):
    try:
        with open(path, "rb") as f:
            return bundle.load(f)
    finally:
        release_loader()  # the checks' modules leave the heap; the next load imports them again


def _why(e):
    if isinstance(e, MemoryError):
        return "too big for this board's heap"
    return str(e) or type(e).__name__


def load_site(log=print):
    """(Site or None, status text). Rolls back to site.prev.zjb when site.zjb does not load."""
    try:
        return _load(SITE), "loaded"
    except OSError:
        if not exists(PREV):
            log("no site yet: sync one with `zongji sync`")
            return None, "no site"
        why = "missing"
    except (bundle.BundleError, MemoryError, ValueError) as e:
        why = _why(e)
    gc.collect()
    log("%s does not load (%s)" % (SITE, why))
    if not exists(PREV):
        return None, "site does not load (%s), no previous one" % why
    try:
        site = _load(PREV)
    except (OSError, bundle.BundleError, MemoryError, ValueError) as e:
        log("the previous bundle does not load either (%s)" % _why(e))
        return None, "site and previous site do not load"
    if exists(SITE):
        if exists(BAD):
            os.remove(BAD)
        os.rename(SITE, BAD)
    os.rename(PREV, SITE)
    log("rolled back to the previous site bundle (the bad one is %s)" % BAD)
    return site, "rolled back: %s did not load (%s)" % (SITE, why)
