"""The site bundle and prompt files on flash: loaded with rollback, replaced by a sync, rolled back.

    site, status = load_site(log)        boot: the running Site (or None) and what happened
    files = SiteStore(root, log)         the admin protocol's backend for files (zongji.admin)
    site, status = files.load()
    files.put_bundle(data, now_ms)       validate, store (the old one kept), apply: a sync
    files.rollback(now_ms)               the previous bundle back, the current one kept as previous
    files.prompts() / prompt(stem) / put_prompt(stem, data) / delete_prompt(stem)

Files, under root (the flash root "." on a board, the --flash folder on the virtual device,
the state folder in host mode): site.zjb, the previous one site.prev.zjb, site.bad.zjb where a
bundle that failed to load at boot is set aside, and prompts/<stem>.ulaw (call/prompts.py
file_name; the wire names a prompt by its stem). A bundle fails when the core's loader refuses
it (damaged, wrong hash, an error in the site) or when it does not fit the heap (MemoryError):
at boot the previous one is then restored and runs; a sync that fails is refused and nothing
on flash changes.

A sync writes site.zjb with Store.write(keep=True): the new bundle goes to site.zjb.tmp, the
running one is renamed site.prev.zjb, the new one renamed site.zjb. A power cut at any step
leaves the old site or the new one: before the second rename only site.prev.zjb may be there,
which load() falls back to. Rollback swaps the two by way of site.swap.zjb, which load() also
knows: with site.zjb missing it is moved back (the old site), with site.prev.zjb missing it
becomes the previous one (the swap finished). What applying means is the shell's:
`apply(site)` (Switch.set_site, prompts forgotten).
"""

import gc
import os

from zongji.shell.store import Store
from zongji.site import bundle, release_loader

SITE = "site.zjb"
PREV = "site.prev.zjb"
BAD = "site.bad.zjb"
SWAP = "site.swap.zjb"  # the running bundle while a rollback swaps the two
PROMPTS = "prompts"
SUFFIX = ".ulaw"


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def AdminError(code, message):  # noqa: N802 - raised as the protocol's exception
    """The protocol's AdminError, imported when first refused: booting imports no admin code
    (a board without PSRAM has no heap to spare for it)."""
    from zongji.admin.protocol import AdminError as E

    return E(code, message)


def _why(e):
    if isinstance(e, MemoryError):
        return "too big for this board's heap"
    return str(e) or type(e).__name__


def load_bytes(data):
    """A bundle in memory -> Site; BundleError, ValueError or MemoryError when it does not load."""
    try:
        return bundle.load(data)
    finally:
        release_loader()


class SiteStore:
    def __init__(self, root=".", log=print, apply=None, error=None):
        self.root = root.rstrip("/") or "."
        self.store = Store(self.root)
        self.log = log
        self.error = error or log  # the problems: the device keeps them for its status
        self.apply = apply  # apply(site): the shell puts a new site into service
        self.site = None
        self.status = "no site"
        self.last_sync = None  # {"version", "previous", "at_ms"} of the last sync or rollback
        self._hashes = None  # prompt stem -> sha256 hex, worked out once (see prompts)

    def path(self, name):
        return self.store.path(name)

    def _load(self, name):
        with open(self.path(name), "rb") as f:
            try:
                return bundle.load(f)
            finally:
                release_loader()  # the checks' modules leave the heap; the next load imports them

    # ---- boot --------------------------------------------------------------------------------

    def load(self):
        """(Site or None, status text). Rolls back to site.prev.zjb when site.zjb does not load."""
        site, self.status = self._boot()
        self.site = site
        return site, self.status

    def _boot(self):
        if exists(self.path(SWAP)):  # a rollback cut short (see rollback)
            if not exists(self.path(SITE)):
                os.rename(self.path(SWAP), self.path(SITE))  # after its first move: as it was
            elif not exists(self.path(PREV)):
                os.rename(self.path(SWAP), self.path(PREV))  # after its second: finished
        try:
            return self._load(SITE), "loaded"
        except OSError:
            if not exists(self.path(PREV)):
                self.log("no site yet: sync one with `zongji sync`")
                return None, "no site"
            why = "missing"
        except (bundle.BundleError, MemoryError, ValueError) as e:
            why = _why(e)
        gc.collect()
        self.error("%s does not load (%s)" % (SITE, why))
        if not exists(self.path(PREV)):
            return None, "site does not load (%s), no previous one" % why
        try:
            site = self._load(PREV)
        except (OSError, bundle.BundleError, MemoryError, ValueError) as e:
            self.error("the previous bundle does not load either (%s)" % _why(e))
            return None, "site and previous site do not load"
        if exists(self.path(SITE)):
            if exists(self.path(BAD)):
                os.remove(self.path(BAD))
            os.rename(self.path(SITE), self.path(BAD))
        os.rename(self.path(PREV), self.path(SITE))
        self.error("rolled back to the previous site bundle (the bad one is %s)" % BAD)
        return site, "rolled back: %s did not load (%s)" % (SITE, why)

    # ---- the admin protocol's backend (files) ------------------------------------------------

    def version(self):
        return self.site.version if self.site is not None else None

    def previous_version(self):
        """The version site.prev.zjb holds (its header line), or None."""
        try:
            with open(self.path(PREV), "rb") as f:
                head = f.readline(512)
        except OSError:
            return None
        at = head.find(b'"sha256":"')
        return head[at + 10 : at + 74].decode() if at >= 0 else None

    def bundle(self):
        try:
            return self.store.read(SITE)
        except OSError as e:
            raise AdminError("failed", "can't read %s: %s" % (SITE, e))

    def put_bundle(self, data, now_ms):
        """Validate data as the loader does, write it (the running one kept), apply it."""
        site = self._validate(data)
        old = self.version()
        if not self.store.write(SITE, data, keep=old is not None):
            raise AdminError("failed", "can't write %s: %s; the running site is unchanged" % (SITE, self.store.error))
        return self._took(site, old, now_ms, "synced")

    def rollback(self, now_ms):
        data = None
        try:
            data = self.store.read(PREV)
        except OSError:
            pass
        if data is None:
            raise AdminError("not-found", "no previous site bundle to roll back to")
        site = self._validate(data, "the previous bundle")
        old = self.version()
        move = self.store.move  # three renames; a power cut between them is undone or
        try:  # finished at boot (_boot), so the device runs one site or the other
            if exists(self.path(SITE)):
                move(SITE, SWAP)
            move(PREV, SITE)
            if exists(self.path(SWAP)):
                move(SWAP, PREV)
        except OSError as e:
            raise AdminError("failed", "can't swap the bundles: %s" % e)
        return self._took(site, old, now_ms, "rolled back")

    def _validate(self, data, what="the bundle"):
        gc.collect()
        try:
            return load_bytes(data)
        except MemoryError:
            gc.collect()
            raise AdminError("too-large", "%s does not fit this board's heap beside the running site" % what)
        except (bundle.BundleError, ValueError) as e:
            raise AdminError("invalid", "%s is refused: %s" % (what, e))

    def _took(self, site, old, now_ms, how):
        self.site = site
        self.status = how
        self.last_sync = {"version": site.version, "previous": old, "at_ms": now_ms, "how": how}
        if self.apply is not None:
            self.apply(site)
        self.log("%s: site version %s... (was %s...)" % (how, site.version[:8], (old or "none")[:8]))
        gc.collect()
        name, n = site.branch.get("name"), len(site.directory)
        return {"version": site.version, "previous": old, "site": name, "extensions": n}

    # ---- prompts -----------------------------------------------------------------------------

    def _stems(self):
        try:
            names = os.listdir(self.path(PROMPTS))
        except OSError:
            return []
        return [n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX)]

    def prompts(self):
        """{stem: sha256 hex} of the stored prompt files, hashed once and then kept up to date
        by put_prompt / delete_prompt (a status must not read the flash every time)."""
        if self._hashes is None:
            from hashlib import sha256

            from zongji.admin.sign import hexlify

            got = {}
            buf = bytearray(512)
            for stem in self._stems():
                h = sha256()
                try:
                    with open(self._prompt(stem), "rb") as f:
                        while True:
                            n = f.readinto(buf)
                            if not n:
                                break
                            h.update(buf[:n] if n < len(buf) else buf)
                except OSError:
                    continue
                got[stem] = hexlify(h.digest())
            self._hashes = got
        return dict(self._hashes)

    def _prompt(self, stem):
        return self.path(PROMPTS + "/" + stem + SUFFIX)

    def prompt(self, stem):
        """The bytes of one stored prompt file, or None (`zongji pull` backs them up)."""
        return self.store.read(PROMPTS + "/" + stem + SUFFIX)

    def put_prompt(self, stem, data):
        from hashlib import sha256

        from zongji.admin.sign import hexlify

        try:
            self.store.prepare_folder(PROMPTS)
        except OSError as e:
            raise AdminError("failed", "can't make %s/: %s" % (PROMPTS, e))
        if not self.store.write(PROMPTS + "/" + stem + SUFFIX, data):
            raise AdminError("failed", "can't write the prompt %s: %s" % (stem, self.store.error))
        if self._hashes is not None:
            self._hashes[stem] = hexlify(sha256(data).digest())
        self.prompts_changed()

    def delete_prompt(self, stem):
        try:
            os.remove(self._prompt(stem))
        except OSError:
            return False
        if self._hashes is not None:
            self._hashes.pop(stem, None)
        self.prompts_changed()
        return True

    def prompts_changed(self):
        """The shell's hook: its PromptFiles forget what they knew (a new file, a gone one)."""


def load_site(log=print, root="."):
    """Boot (main.py's device): (Site or None, status text), with rollback."""
    return SiteStore(root, log).load()
