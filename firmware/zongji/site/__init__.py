"""The site: what the branch is, as the admin wrote it and as the switch looks it up.

schema (the keys and their types), checks (what is wrong with a site, file:line), bundle (the
compact canonical file the device loads), model (Site, the loaded site), directory, names
(dial-by-name keys), hours, countries (numbering plans), targets (the target strings), and
dialplan (digits -> a target). Nothing here knows of calls, SIP or I/O.
"""

_LOADER_ONLY = ("checks", "staffchecks", "schema")  # what only a bundle load uses


def release_loader():
    """Forget the modules only a load uses (checks, staffchecks, schema): a device calls it once
    its site is loaded, and their functions and tables leave the heap (6.7 KB on the unix port
    with the core frozen, ~3.5 KB at 32 bits; 7.5 KB with a ROMFS core at 32 bits). The next load
    imports them again. Returns how many were dropped."""
    import sys

    dropped = 0
    for name in _LOADER_ONLY:
        if sys.modules.pop("zongji.site." + name, None) is not None:
            dropped += 1
        globals().pop(name, None)
    return dropped
