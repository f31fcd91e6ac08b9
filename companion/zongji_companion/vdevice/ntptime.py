"""ntptime for the virtual device: the unix port's clock is the host's, already set, so
settime() only fails (OSError, as a real timeout does) while the fake link is down."""

import network

host = "pool.ntp.org"
timeout = 1


def settime():
    if not network.link_up():
        raise OSError(110)  # ETIMEDOUT


def time():
    import time as _time

    settime()
    return int(_time.time())
