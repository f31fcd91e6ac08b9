"""Prompt files on the host: `zongji prompts build` makes them, `zongji check` compares them.

The core says which prompts a site has (`zongji.call.prompts.prompt_ids`); this module turns
each into SITE/prompts/<id>.ulaw, raw 8 kHz G.711 µ-law the device plays as it is, and keeps
SITE/prompts/manifest.json saying what each file was built from:

    {"format": 1, "settings": SETTINGS, "tools": {"espeak-ng": "...", "sox": "..."},
     "prompts": {id: {"file", "source": "text"|"recording", "text", "voice" | "recording",
                      "recording_sha256", "built_from", "bytes", "sha256", "seconds"}}}

`built_from` is a SHA-256 over everything that decides the audio (the text and voice, or the
recording's bytes, and SETTINGS), so a file is stale exactly when one of them changed; `bytes`
and `sha256` catch a file changed or damaged after it was built.

Text is spoken by espeak-ng (voice by [branch] language: en -> "en", zh -> "cmn"), recordings
(WAV, or MP3 where sox has the MP3 handler) are read by sox. Every file goes through one sox
chain, SOX_EFFECTS: mono; a telephone band-pass (300-3400 Hz, what a G.711 line carries, so
nothing is spent on what the far end filters away); leading and trailing silence trimmed, so
pieces of a sentence played one after another do not leave gaps; resampled to 8 kHz;
normalised to a -3 dBFS peak (speech then sits near -20 dBFS RMS, a usual telephone level,
with no clipping); 150 ms of silence after each piece, the pause between words and digits.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from zongji.call import prompts as core

MANIFEST = core.DIR + "/manifest.json"
FORMAT = 1
RATE = 8000  # samples a second: µ-law is one byte a sample
VOICES = {"en": "en", "zh": "cmn"}
ESPEAK_SPEED = 160  # words a minute (espeak-ng's default is 175: a little slower on a phone line)
SOX_EFFECTS = (
    "channels 1 highpass 300 lowpass 3400 silence 1 0.02 -50d reverse silence 1 0.02 -50d reverse "
    "rate 8000 gain -n -3 pad 0 0.15"
).split()
SETTINGS = {"format": "ulaw/8000/mono", "espeak_speed": ESPEAK_SPEED, "sox": " ".join(SOX_EFFECTS)}
PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}
TIMEOUT = 60  # seconds for one espeak-ng or sox run


class PromptError(Exception):
    """One prompt could not be built; str(e) says why and what to do."""


class Item:
    """One prompt of the site and the state of its file (`state`: ok, missing or stale)."""

    def __init__(self, pid, text, recording):
        self.id = pid
        self.text = text
        self.recording = recording  # as written in site.toml, relative to the site folder
        self.file = core.file_name(pid)
        self.voice = None
        self.recording_sha256 = None
        self.built_from = None
        self.state = "missing"
        self.why = ""

    @property
    def menu(self):
        return self.id[5:] if self.id.startswith("menu.") else None

    @property
    def owner(self):
        """Whose recording this is, as a message names it: menu 'x', or [sounds] ringback."""
        if self.id.startswith("sound."):
            return "[sounds] " + self.id[6:]
        if self.id.startswith("name."):
            return "the name of %s" % self.id[5:]
        return "menu '%s'" % self.menu


def voice_for(language):
    return VOICES.get(language, "en")


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


def _built_from(item):
    if item.recording is not None:
        what = {"recording_sha256": item.recording_sha256}
    else:
        what = {"text": item.text, "voice": item.voice}
    what["settings"] = SETTINGS
    return hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_manifest(root):
    """The manifest's dict ({} when there is none or it is unreadable: every file is then stale)."""
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("prompts"), dict) else {}


def save_manifest(root, manifest):
    path = os.path.join(root, MANIFEST)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


NAMES = "names"  # SITE/names/<extension number>.wav (or .mp3): a person's name, said by them
NAME_EXTS = (".wav", ".mp3")


def name_recordings(root, site, numbers=None):
    """[(name.<number>, None, "names/<file>")] for each recording in SITE/names named after an
    extension of the site (`numbers`, or the site's directory): dial-by-name then says the name
    instead of reading the number."""
    try:
        files = sorted(os.listdir(os.path.join(root, NAMES)))
    except OSError:
        return []
    out = []
    for f in files:
        number, ext = os.path.splitext(f)
        known = number in numbers if numbers is not None else site.extension(number) is not None
        if ext.lower() in NAME_EXTS and known:
            out.append(("name." + number, None, NAMES + "/" + f))
    return out


def survey(root, site, manifest=None, numbers=None):
    """(items, unused): every prompt of `site` with its state, and the files and manifest
    entries under SITE/prompts that no prompt of the site has any more."""
    if manifest is None:
        manifest = load_manifest(root)
    built = manifest.get("prompts") or {}
    items = []
    for pid, text, recording in core.prompt_ids(site) + name_recordings(root, site, numbers):
        item = Item(pid, text, recording)
        if recording is not None:
            try:
                item.recording_sha256 = _sha256_file(os.path.join(root, recording))
            except OSError:
                item.recording_sha256 = None  # zongji check reports the missing file as an error
        else:
            item.voice = voice_for(site.language)
        item.built_from = _built_from(item)
        _judge(root, item, built.get(pid))
        items.append(item)
    return items, _unused(root, items, built)


def _judge(root, item, entry):
    path = os.path.join(root, item.file)
    if not isinstance(entry, dict) or not os.path.isfile(path):
        item.state, item.why = "missing", "not built yet"
        return
    item.state = "stale"
    if entry.get("built_from") != item.built_from:
        item.why = _changed(item, entry)
        return
    try:
        size = os.path.getsize(path)
        same = size == entry.get("bytes") and _sha256_file(path) == entry.get("sha256")
    except OSError:
        same = False
    if not same:
        item.why = "the file was changed or damaged after it was built"
        return
    item.state, item.why = "ok", ""


def _changed(item, entry):
    if item.recording is not None:
        if entry.get("source") != "recording":
            return "the menu has a recording now, %s was built from its text" % item.file
        if item.recording_sha256 is None:
            return "the recording %s is missing" % item.recording
        if entry.get("recording") != item.recording:
            return "the recording is now %s (was %s)" % (item.recording, entry.get("recording"))
        if entry.get("recording_sha256") != item.recording_sha256:
            return "the recording %s changed after the file was built" % item.recording
    else:
        if entry.get("source") != "text":
            return "the menu's recording was removed: its text is spoken now"
        if entry.get("voice") != item.voice:
            return "the voice changed (%s, was %s: [branch] language)" % (item.voice, entry.get("voice"))
        if entry.get("text") != item.text:
            return "the text changed after the file was built"
    return "the build settings changed (a newer zongji)"


def _unused(root, items, built):
    wanted = {item.file for item in items}
    # a recording kept among the built files is the admin's, never removed as unused
    wanted |= {os.path.normpath(i.recording).replace(os.sep, "/") for i in items if i.recording}
    ids = {item.id for item in items}
    out = set()
    folder = os.path.join(root, core.DIR)
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        if name.endswith(core.EXT) and core.DIR + "/" + name not in wanted:
            out.add(core.DIR + "/" + name)
    for pid in built:
        # the name is made again from the id, never taken from the manifest: a hand-edited
        # manifest can't make a build remove a file outside SITE/prompts
        name = core.file_name(pid)
        if pid not in ids and name not in wanted and os.path.exists(os.path.join(root, name)):
            out.add(name)
    return sorted(out)


def files_bytes(root):
    """[(file, bytes)] of the prompt files under SITE/prompts (what goes to the device)."""
    folder = os.path.join(root, core.DIR)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(core.EXT))
    except OSError:
        return []
    out = []
    for name in names:
        try:
            out.append((core.DIR + "/" + name, os.path.getsize(os.path.join(folder, name))))
        except OSError:
            pass
    return out


# ---------------------------------------------------------------- building


def tool(name):
    """The path of espeak-ng or sox; PromptError naming the Debian package when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise PromptError(
            "%s is not installed (or not on PATH): it %s; install it (Debian/Ubuntu: sudo apt install %s)"
            % (name, "speaks the prompts' text" if name == "espeak-ng" else "converts audio", PACKAGES[name])
        )
    return path


def _version(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def _run(argv, what, stdin=None):
    try:
        out = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PromptError("%s took more than %d s" % (what, TIMEOUT)) from None
    except OSError as e:
        raise PromptError("%s: can't run %s: %s" % (what, argv[0], e.strerror)) from None
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PromptError("%s failed: %s" % (what, err[-1] if err else "exit code %d" % out.returncode))


def _sox_reads_mp3(sox):
    try:
        out = subprocess.run([sox, "-h"], capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return False
    for line in out.stdout.splitlines():
        if line.startswith("AUDIO FILE FORMATS:"):
            return "mp3" in line.split()
    return False


class Builder:
    """Builds one site's prompts: `Builder(root, site).run(force, progress)`."""

    def __init__(self, root, site):
        self.root = root
        self.site = site
        self._tools = {}

    def _tool(self, name):
        if name not in self._tools:
            self._tools[name] = tool(name)
        return self._tools[name]

    def stale(self, force=False):
        items, unused = survey(self.root, self.site)
        todo = [i for i in items if force or i.state != "ok"]
        return items, todo, unused

    def run(self, force=False, progress=None):
        """Build what is stale (everything with force), remove unused files. Returns a dict:
        built/kept [ids], removed [files], failed [(id, message)], items."""
        items, todo, unused = self.stale(force)
        if todo:
            self._tool("sox")
            if any(i.recording is None for i in todo):
                self._tool("espeak-ng")
        os.makedirs(os.path.join(self.root, core.DIR), exist_ok=True)
        manifest = load_manifest(self.root)
        entries = dict(manifest.get("prompts") or {})
        done = {"built": [], "kept": [i.id for i in items if i not in todo], "removed": [], "failed": []}
        try:
            for item in todo:
                if progress is not None:
                    progress(item)
                try:
                    entries[item.id] = self.build_one(item)
                    done["built"].append(item.id)
                except PromptError as e:
                    entries.pop(item.id, None)
                    done["failed"].append((item.id, str(e)))
            ids = {i.id for i in items}
            for pid in [p for p in entries if p not in ids]:
                del entries[pid]
            for name in unused:
                try:
                    os.remove(os.path.join(self.root, name))
                    done["removed"].append(name)
                except FileNotFoundError:
                    pass
        finally:
            tools = dict(manifest.get("tools") or {})
            for name, path in self._tools.items():
                tools[name] = _version(path)
            save_manifest(self.root, {"format": FORMAT, "settings": SETTINGS, "tools": tools, "prompts": entries})
        done["items"] = items
        return done

    def build_one(self, item):
        """Render or convert one prompt into its file; its manifest entry."""
        sox = self._tool("sox")
        out = os.path.join(self.root, item.file)
        with tempfile.TemporaryDirectory(prefix="zongji-prompt-") as tmp:
            if item.recording is not None:
                source = os.path.join(self.root, item.recording)
                if item.recording_sha256 is None or not os.path.isfile(source):
                    raise PromptError("recording %s of %s not found" % (item.recording, item.owner))
                if source.lower().endswith(".mp3") and not _sox_reads_mp3(sox):
                    raise PromptError(
                        "%s is an MP3 and this sox has no MP3 handler: install libsox-fmt-mp3 "
                        "(Debian/Ubuntu: sudo apt install libsox-fmt-mp3), or save the recording as WAV"
                        % item.recording
                    )
                what = "converting %s" % item.recording
            else:
                source = os.path.join(tmp, "speech.wav")
                argv = [self._tool("espeak-ng"), "-v", item.voice, "-s", str(ESPEAK_SPEED), "-w", source, "--stdin"]
                _run(argv, "espeak-ng (%s)" % item.id, stdin=item.text.encode("utf-8"))
                what = "sox (%s)" % item.id
            part = os.path.join(tmp, "out.ulaw")
            argv = [sox, "-D", source, "-t", "raw", "-e", "mu-law", "-b", "8", "-c", "1", "-r", str(RATE), part]
            _run(argv + SOX_EFFECTS, what)
            size = os.path.getsize(part)
            if size <= RATE * 0.15 + 1:  # only the pad: the source held nothing above -50 dB
                what = item.recording or item.id
                raise PromptError("%s is silent after conversion (nothing above -50 dBFS)" % what)
            digest = _sha256_file(part)
            shutil.move(part, out + ".tmp")
            os.replace(out + ".tmp", out)
        entry = {"file": item.file, "built_from": item.built_from, "bytes": size, "sha256": digest}
        entry["seconds"] = round(size / float(RATE), 2)
        if item.recording is not None:
            entry.update(source="recording", recording=item.recording, recording_sha256=item.recording_sha256)
            if item.text is not None:
                entry["text"] = item.text  # replaced by the recording; kept for people reading
        else:
            entry.update(source="text", text=item.text, voice=item.voice)
        item.state, item.why = "ok", ""
        return entry


# ---------------------------------------------------------------- what zongji check says

FIX = "run `zongji prompts build %s`"
SILENCE = "the device plays silence for it (a warning, not an error: calls are still routed)"


def check_problems(root, site, site_arg, file_path, numbers=None):
    """Warnings (level, path, message) for prompts missing, stale or no longer used.

    `file_path(name, line)` makes the sitefiles path of a line of another file; `numbers`: the
    extensions' numbers when `site` has no directory (names/<number>.wav is theirs)."""
    items, unused = survey(root, site, numbers=numbers)
    fix = FIX % site_arg
    out = []
    if not any(i.state != "missing" for i in items) and not os.path.exists(os.path.join(root, MANIFEST)):
        out.append(
            (
                "warning",
                ("branch", "language"),
                "no prompt files yet (%d prompts: menu greetings, phrases, digits): the device plays "
                "silence where the attendant speaks (a warning, not an error: calls are still routed); %s"
                % (len(items), fix),
            )
        )
    else:
        system = {"missing": [], "stale": []}
        for item in items:
            if item.state == "ok":
                continue
            if item.menu is None:
                system[item.state].append(item)
                continue
            key = "audio" if item.recording is not None else "prompt"
            if item.state == "missing":
                msg = "menu '%s': its prompt file %s is missing: %s; %s" % (item.menu, item.file, SILENCE, fix)
            else:
                msg = "menu '%s': %s is stale: %s (the device plays the old greeting); %s" % (
                    item.menu,
                    item.file,
                    item.why,
                    fix,
                )
            out.append(("warning", ("menus", item.menu, key), msg))
        for state in ("missing", "stale"):
            group = system[state]
            if not group:
                continue
            shown = ", ".join(i.id for i in group[:6]) + (", ..." if len(group) > 6 else "")
            why = group[0].why
            if state == "missing":
                why = SILENCE if len(group) == 1 else SILENCE.replace("for it", "for them")
            out.append(
                (
                    "warning",
                    ("branch", "language"),
                    "%d built-in prompt%s %s (%s): %s; %s"
                    % (len(group), "" if len(group) == 1 else "s", state, shown, why, fix),
                )
            )
    for name in unused:
        out.append(
            (
                "warning",
                file_path(MANIFEST, 1),
                "%s is no prompt of this site any more (it still takes flash): `zongji prompts build %s` "
                "removes it" % (name, site_arg),
            )
        )
    return out
