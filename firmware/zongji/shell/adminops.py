"""The admin protocol's backend, the same for every shell: files from SiteStore, the rest from
the running switch (zongji.admin.protocol lists the operations).

    ops = AdminOps(files, shell)     files: shell.sitefile.SiteStore; shell: the shell object
    admin = Admin(token, ops)

What the shell gives (attributes and methods, all optional but `sw`):
    shell.sw                  the running Switch, or None (no site yet)
    shell.now_ms()            the switch's clock (the admin's may be wall time)
    shell.status_extra(now)   a dict merged into the status: uptime_s, heap, network, board ...
    shell.reboot_soon()       reset once the answer to POST /reboot has gone out
    shell.errors              a list of recent error lines (the newest last)
"""

from zongji.admin.protocol import AdminError

MAX_PHONES = 200  # phones listed in a status (a status is one answer, not a dump)


def _trunk(sw):
    reg = sw.trunk_reg
    if sw.gateway is None:
        return {"state": "none"}
    if reg is None:
        return {"state": "no registration", "host": sw.trunk_addr[0]}
    return {"state": reg.state, "detail": getattr(reg, "detail", "")}


def phones(sw, now_ms):
    """[{number, contact, address, expires_in, user_agent}, ...] of the live registrations."""
    out = []
    reg = sw.registrar
    for ext in sw.site.directory.records():
        if not ext.has_phone():
            continue
        for uri, addr, exp in reg.contacts(ext.number, now_ms):
            out.append({"number": ext.number, "contact": uri, "address": "%s:%d" % addr,
                        "expires_in": (exp - now_ms) // 1000, "user_agent": reg.agent(ext.number)})  # fmt: skip
            if len(out) >= MAX_PHONES:
                return out
    return out


def _ago(sync, now_ms):
    if sync is None:
        return None
    out = dict(sync)
    out["ago_s"] = max(0, (now_ms - out.pop("at_ms")) // 1000)
    return out


class AdminOps:
    def __init__(self, files, shell):
        self.files = files
        self.shell = shell

    def version(self):
        return self.files.version()

    def bundle(self):
        return self.files.bundle()

    def put_bundle(self, data, now_ms):
        return self.files.put_bundle(data, now_ms)

    def rollback(self, now_ms):
        return self.files.rollback(now_ms)

    def prompts(self):
        return self.files.prompts()

    def prompt(self, stem):
        return self.files.prompt(stem)

    def put_prompt(self, stem, data):
        self.files.put_prompt(stem, data)

    def delete_prompt(self, stem):
        return self.files.delete_prompt(stem)

    def cdr(self, since):
        sw = self.shell.sw
        return sw.cdr.records(since) if sw is not None else []

    def reboot(self, now_ms):
        soon = getattr(self.shell, "reboot_soon", None)
        if soon is None:
            raise AdminError("method", "this shell cannot reboot: restart it by hand")
        soon()

    def status(self, now_ms):
        files = self.files
        site = files.site
        data = {
            "version": files.version(),
            "previous": files.previous_version(),
            "site": site.branch.get("name") if site is not None else None,
            "extensions": len(site.directory) if site is not None else 0,
            "site_status": files.status,
            "last_sync": _ago(files.last_sync, now_ms),
            "prompts": len(files.prompts()),
            "errors": list(getattr(self.shell, "errors", ()))[-10:],
        }
        sw = self.shell.sw
        if sw is not None:
            sizes = sw.sizes()
            data["registered"] = phones(sw, self.shell.now_ms())  # the switch's clock, not the admin's
            data["trunk"] = _trunk(sw)
            data["calls"] = sizes["calls"][0]
            data["sip"] = sw.me
            data["tables"] = {k: list(v) for k, v in sizes.items()}
            data["counters"] = dict(sw.counters)
        extra = getattr(self.shell, "status_extra", None)
        if extra is not None:
            data.update(extra(now_ms))
        return data
