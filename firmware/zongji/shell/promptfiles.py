"""Prompt files on a filesystem: what media/hub.py plays, for every shell.

    store = PromptFiles("/")              the device: /prompts/<id>.ulaw beside the bundle
    store = PromptFiles("SITE")           host mode: SITE/prompts/<id>.ulaw (zongji prompts build)
    store.has(pid); f = store.open(pid)   a file to readinto(), or None when it was never built

Which ids exist is asked of the filesystem once per id and remembered (a stat per prompt per
call would cost flash reads); forget() drops that after a sync puts new prompts there.
"""

import os

from zongji.call.prompts import file_name


class PromptFiles:
    def __init__(self, root):
        self.root = root.rstrip("/")
        self._known = {}

    def _path(self, pid):
        return self.root + "/" + file_name(pid)

    def has(self, pid):
        got = self._known.get(pid)
        if got is None:
            try:
                os.stat(self._path(pid))
                got = True
            except OSError:
                got = False
            if len(self._known) < 256:
                self._known[pid] = got
        return got

    def open(self, pid):
        if not self.has(pid):
            return None
        try:
            return open(self._path(pid), "rb")
        except OSError:
            self._known[pid] = False
            return None

    def forget(self):
        self._known = {}
