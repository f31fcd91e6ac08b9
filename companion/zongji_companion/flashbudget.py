"""Does a site fit on a board's flash? The files a site puts on the device's filesystem,
counted as littlefs stores them, against the board's filesystem partition.

    fit = estimate(board, bundle_bytes, [(file, bytes), ...])   a dict, see below
    fit["over"] > 0   the site does not fit: `zongji check` and `zongji bundle` say so

MicroPython's ESP32 images put the bootloader, the partition table, NVS and a 1.94 MB app
partition in the first 2 MiB of flash and give the rest to the filesystem ("vfs": 2 MiB of a
4 MB module, 6 MiB of an 8 MB one). littlefs stores each file in whole 4 KiB blocks and writes
copy-on-write, so each file is rounded up to blocks, and a tenth of the partition is kept
free for littlefs itself (its metadata and the blocks a write needs before it frees the old).

What is counted: the bundle three times (site.zjb, site.prev.zjb kept for rollback, and the
temporary file a sync writes before the rename), every prompt file plus room to replace the
largest one, the app (main.py, the compiled core unless the board's image has it frozen,
microdot, config.json, board.json, secrets.json: appfiles.app_sizes), and the state the device
writes: call records at RECORD_BYTES each, up to the board's `max_records`, and
registrations.json.
"""

BLOCK = 4096
RESERVED = 2 * 1024 * 1024  # bootloader + partition table + NVS + the app partition
SPARE = 0.10  # of the partition, left to littlefs
RECORD_BYTES = 256  # one call record line in state/cdr.jsonl (~203 B measured, BENCHMARKS.md)
REGISTRATIONS_BYTES = 16 * 1024  # state/registrations.json (4.5 KB measured with 64 phones)
DEFAULT_RECORDS = 500


def flash_bytes(text):
    """'4MB' -> 4194304 (board files write flash_size as esptool takes it)."""
    t = str(text).strip().upper()
    for unit, mult in (("MB", 1024 * 1024), ("KB", 1024)):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * mult)
    return int(t)


def blocks(n):
    return -(-n // BLOCK) * BLOCK if n else 0


def folders(paths):
    """Every folder the paths need, the root ("") included: littlefs keeps a metadata pair (two
    blocks) for each."""
    out = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def estimate(board, bundle_bytes, prompt_files, app_files=None):
    """How much of `board`'s filesystem the site takes (bytes, in whole blocks). app_files:
    [(path, bytes)] of the app's own files (default: appfiles.app_sizes(board))."""
    if app_files is None:
        from zongji_companion import appfiles

        app_files = appfiles.app_sizes(board)
    app = sum(blocks(n) for _, n in app_files)
    app += 2 * BLOCK * len(folders([p for p, _ in app_files] + [p for p, _ in prompt_files]))
    partition = max(0, flash_bytes(board["flash_size"]) - RESERVED)
    usable = int(partition * (1 - SPARE))
    prompts = sum(blocks(n) for _, n in prompt_files)
    largest = max([blocks(n) for _, n in prompt_files] or [0])
    records = (board.get("limits") or {}).get("max_records") or DEFAULT_RECORDS
    state = blocks(records * RECORD_BYTES) + blocks(REGISTRATIONS_BYTES)
    bundle = 3 * blocks(bundle_bytes)
    total = bundle + prompts + largest + app + state
    return {
        "board": board["name"],
        "partition": partition,
        "usable": usable,
        "bundle": bundle,
        "prompts": prompts,
        "prompt_files": len(prompt_files),
        "app": app,
        "app_files": len(app_files),
        "state": state + largest,
        "total": total,
        "over": max(0, total - usable),
    }


def size(n):
    if n >= 1024 * 1024:
        return "%.2f MB" % (n / 1048576.0)
    return "%d KB" % -(-n // 1024)


def describe(fit):
    """One line: 'flash (esp32-wrover): 1.20 MB of 1.80 MB: bundle 156 KB, 31 prompt files 420 KB, ...'."""
    return (
        "flash (%s): %s of %s usable: app %s, bundle %s (×3: current, previous, sync), %d prompt file%s %s, "
        "state %s"
        % (
            fit["board"],
            size(fit["total"]),
            size(fit["usable"]),
            size(fit["app"]),
            size(fit["bundle"]),
            fit["prompt_files"],
            "" if fit["prompt_files"] == 1 else "s",
            size(fit["prompts"]),
            size(fit["state"]),
        )
    )


def over_message(fit):
    return (
        "the site does not fit on the %s's flash, %s over (%s); make the menu recordings or greetings "
        "shorter, or use a board with more flash (--board)" % (fit["board"], size(fit["over"]), describe(fit))
    )
