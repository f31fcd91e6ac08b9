"""The site: what the branch is, as the admin wrote it and as the switch looks it up.

schema (the keys and their types), checks (what is wrong with a site, file:line), bundle (the
compact canonical file the device loads), model (Site, the loaded site), directory, names
(dial-by-name keys), hours, countries (numbering plans), targets (the target strings), and
dialplan (digits -> a target). Nothing here knows of calls, SIP or I/O.
"""
