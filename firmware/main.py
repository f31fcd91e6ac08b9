# zongji device shell (ESP32, MicroPython): runs at boot after boot.py.
#
# Loads the site bundle with the core's own loader. A bundle that fails to load is set aside
# and the previous one is restored (config writes keep the last good one as site.prev.zjb),
# so a bad sync can never leave the branch without a switchboard. The SIP and admin shells
# start from here as they land.
import os

from zongji.site import bundle

SITE = "/site.zjb"
PREV = "/site.prev.zjb"
BAD = "/site.bad.zjb"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _load(path):
    with open(path, "rb") as f:
        return bundle.load(f)


def load_site():
    """The running site, rolling back to the previous bundle when the current one is bad."""
    try:
        return _load(SITE)
    except OSError:
        print("zongji: no site yet: sync one with `zongji sync`")
        return None
    except bundle.BundleError as e:
        print("zongji: %s does not load (%s)" % (SITE, e))
    if not _exists(PREV):
        return None
    try:
        site = _load(PREV)
    except (OSError, bundle.BundleError) as e:
        print("zongji: the previous bundle does not load either (%s)" % e)
        return None
    os.rename(SITE, BAD)
    os.rename(PREV, SITE)
    print("zongji: rolled back to the previous site bundle")
    return site


def main():
    site = load_site()
    if site is not None:
        print("zongji: %s, %d extensions, version %s" % (site.branch["name"], len(site.directory), site.version[:16]))


main()
