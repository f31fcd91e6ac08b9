"""The automated attendant: one outside caller's way through the menus, sans-IO.

The shell feeds it keys and the clock; it answers with actions to carry out in order:

    ("menu", name)                    entered a menu (for traces and records)
    ("play", pid, text, audio, args)  play a prompt: pid is "menu" for a menu greeting (audio is
                                      the site's file or None, args (menu name,)) or a
                                      prompts.PHRASES id with its args for prompts.parts()
    ("pin_failed", number)            a wrong PIN: the switch counts it against the caller
    ("transfer", target, name)        put the caller through; the attendant is done unless the
                                      shell reports transfer_failed()
    ("hangup", reason)                end the call

    a = Attendant(site, tm)           tm: local wall-clock time (year, month, mday, h, m, wday)
    a = Attendant(site, tm, pin=(target, number))   ask extension `number` for its PIN, then
                                      put it through to target (a class that needs a PIN)
    actions = a.start(now_ms)         opening hours decide: main menu, a DID's target, or closed
    actions = a.key("2", now_ms)      a DTMF key, whichever way it arrived (RFC 4733, INFO, tones)
    actions = a.timer(now_ms)         call when now_ms >= a.deadline
    actions = a.prompt_done(now_ms)   a greeting finished playing: the reply timeout starts now

Timeouts and invalid keys count against the menu's `retries`; when they run out the caller
goes to `on_timeout` / `on_invalid` (the operator unless the site says otherwise), so a caller
who does nothing reaches a person. With `dial_extensions` a caller may dial any short number
during a menu; only short numbers, never the outside-line prefix or an emergency number, so a
menu can't be used to place calls at the branch's expense.
"""

from zongji.call.decision import entry_at
from zongji.call.prompts import phrase
from zongji.site import dialplan, names
from zongji.site.directory import pin_hash

_MENU = 0  # waiting for a menu key
_NAME = 1  # dial-by-name: collecting letters
_PICK = 2  # dial-by-name: choosing among the matches read out
_DONE = 3
_PIN = 4  # collecting a PIN

_TIMEOUT = 0  # what the deadline is for: no key at all ...
_INTERDIGIT = 1  # ... or more digits of an ambiguous number

MAX_STACK = 10
MAX_CHOICES = 8
PIN_TRIES = 3  # wrong PINs (or silences) in one call before the attendant hangs up
PIN_MAX_DIGITS = 12


class Attendant:
    def __init__(self, site, tm, entry=None, pin=None):
        self.site = site
        self.pin = pin  # (target, number): ask number's PIN, then put it through to target
        self.tm = tm
        self.entry = entry  # a target text (from a DID) instead of the main menu
        self.mode = _MENU
        self.menu = None
        self.stack = []
        self.tries = 0
        self.buffer = ""
        self.pending = None
        self.choices = []
        self.deadline = None
        self._dk = _TIMEOUT
        self.target = None  # the last transfer target
        self.tried_operator = False
        self._out = None

    # ---- events -------------------------------------------------------------------------

    def start(self, now_ms):
        out = self._begin()
        if self.pin is not None:
            self._ask_pin(now_ms)
        else:
            self._go(entry_at(self.site, self.entry, self.tm)[0], now_ms)
        return out

    def key(self, k, now_ms):
        out = self._begin()
        if self.mode == _MENU:
            self._menu_key(k, now_ms)
        elif self.mode == _NAME:
            self._name_key(k, now_ms)
        elif self.mode == _PICK:
            self._pick_key(k, now_ms)
        elif self.mode == _PIN:
            self._pin_key(k, now_ms)
        return out

    def timer(self, now_ms):
        out = self._begin()
        if self.deadline is None or now_ms < self.deadline or self.mode == _DONE:
            return out
        self.deadline = None
        if self.mode == _PIN:
            self._pin_wrong(now_ms, silent=True)
        elif self.mode == _NAME and self.buffer:
            self._search(now_ms, final=True)
        elif self._dk == _INTERDIGIT:
            self._resolve_buffer(now_ms)
        elif self.mode == _MENU:
            self._retry("on_timeout", now_ms, False)
        else:  # silence in dial-by-name: ask again, then the operator
            self.tries += 1
            if self.tries > 2:
                self._go("operator", now_ms)
            elif self.mode == _PICK:
                self._read_choices(now_ms)
            else:
                self._start_names(now_ms)
        return out

    def prompt_done(self, now_ms):
        if self.mode != _DONE and self._dk == _TIMEOUT and not self.buffer:
            self.deadline = now_ms + self._timeout_ms()
        return []

    def transfer_failed(self, now_ms):
        """The target did not answer or was busy: fall back to the operator, once."""
        out = self._begin()
        op = self.site.operator()
        if self.tried_operator or op is None or op == self.target:
            self._say("unavailable")
            self._hangup("unavailable")
        else:
            self._transfer(op)
        return out

    @property
    def done(self):
        return self.mode == _DONE

    # ---- helpers --------------------------------------------------------------------------

    def _begin(self):
        self._out = []
        return self._out

    def _emit(self, *action):
        self._out.append(action)

    def _say(self, pid, *args, parts=()):
        self._emit("play", pid, phrase(self.site.language, pid, *args), None, parts)

    def _timeout_ms(self):
        m = self.site.menus.get(self.menu) if self.menu else None
        return int((m["timeout"] if m else 5) * 1000)

    def _wait(self, now_ms, kind):
        self._dk = kind
        self.deadline = now_ms + (self.site.interdigit_ms if kind == _INTERDIGIT else self._timeout_ms())

    def _go(self, text, now_ms):
        """Act on a target text from the site."""
        target = self.site.resolve(text) if text is not None else None
        if target is None:  # cannot happen after checks; never strand a caller
            target = self.site.operator()
            if target is None:
                self._hangup("no-route")
                return
        kind = target[0]
        if kind == "menu":
            self._enter(target[1], now_ms, push=True)
        elif kind == "repeat":
            self._enter(self.menu, now_ms, push=False, again=True)
        elif kind == "back":
            name = self.stack.pop() if self.stack else self.menu
            self._enter(name, now_ms, push=False)
        elif kind == "directory":
            self._start_names(now_ms)
        elif kind == "hangup":
            self._say("goodbye")
            self._hangup("menu")
        else:
            self._transfer(target)

    def _enter(self, name, now_ms, push, again=False):
        if push and self.menu is not None and self.menu != name:
            self.stack.append(self.menu)
            if len(self.stack) > MAX_STACK:
                self.stack.pop(0)
        if not again:
            self.tries = 0
        self.menu = name
        self.mode = _MENU
        self.buffer = ""
        self.pending = None
        m = self.site.menus[name]
        self._emit("menu", name)
        self._emit("play", "menu", m.get("prompt") or "", m.get("audio"), (name,))
        self._wait(now_ms, _TIMEOUT)

    def _transfer(self, target):
        self.target = target
        if target == self.site.operator():
            self.tried_operator = True
        name = self.site.name_of(target)
        self._say("connecting", name, parts=(_spoken(target),))
        self._emit("transfer", target, name)
        self.mode = _DONE
        self.deadline = None

    def _hangup(self, reason):
        self._emit("hangup", reason)
        self.mode = _DONE
        self.deadline = None

    def _retry(self, which, now_ms, invalid):
        """A timeout or an invalid key: repeat the menu, or give up to its on_* target."""
        m = self.site.menus[self.menu]
        if invalid:
            self._say("invalid")
        self.tries += 1
        self.buffer = ""
        self.pending = None
        if self.tries > m["retries"]:
            self._go(m[which], now_ms)
        else:
            self._enter(self.menu, now_ms, push=False, again=True)

    # ---- menu keys ------------------------------------------------------------------------

    def _menu_key(self, k, now_ms):
        m = self.site.menus[self.menu]
        options = m["options"]
        if k == "#" and self.buffer:
            self._resolve_buffer(now_ms)
            return
        if not m.get("dial_extensions") or k not in "0123456789":
            if not self.buffer and k in options:
                self._go(options[k], now_ms)
            else:
                self._retry("on_invalid", now_ms, True)
            return
        self.buffer += k
        status, target = self.site.dialplan.match(self.buffer, internal=True)
        option = options.get(self.buffer) if len(self.buffer) == 1 else None
        if option is not None:
            if status == dialplan.NO_MATCH:
                self._go(option, now_ms)
                return
            self.pending = option  # the key is an option and starts a number: wait and see
            self._wait(now_ms, _INTERDIGIT)
        elif status == dialplan.MATCH:
            self._transfer(target)
        elif status == dialplan.MATCH_OR_MORE:
            self.pending = target
            self._wait(now_ms, _INTERDIGIT)
        elif status == dialplan.NEED_MORE:
            self.pending = None
            self._wait(now_ms, _INTERDIGIT)
        else:
            self._retry("on_invalid", now_ms, True)

    def _resolve_buffer(self, now_ms):
        pending = self.pending
        self.pending = None
        self.buffer = ""
        if pending is None:
            self._retry("on_invalid", now_ms, True)
        elif isinstance(pending, str):
            self._go(pending, now_ms)
        else:
            self._transfer(pending)

    # ---- dial by name ---------------------------------------------------------------------

    def _start_names(self, now_ms):
        self.mode = _NAME
        self.buffer = ""
        self._emit("menu", "directory")
        self._say("dbn_intro")
        self._wait(now_ms, _TIMEOUT)

    def _name_key(self, k, now_ms):
        if k == "*":
            self._leave_names(now_ms)
        elif k == "#":
            self._search(now_ms, final=True)
        elif "2" <= k <= "9":
            self.buffer += k
            if len(self.buffer) >= self.site.attendant.get("name_min_keys", 3):
                self._search(now_ms, final=False)
            else:
                self._wait(now_ms, _TIMEOUT)
        else:
            self._say("invalid")
            self._wait(now_ms, _TIMEOUT)

    def _leave_names(self, now_ms):
        if self.menu is not None:
            self._enter(self.menu, now_ms, push=False)
        else:
            self._go("operator", now_ms)

    def _search(self, now_ms, final):
        # walked one record at a time: a list of every record (~42 KB for 500 staff) would not
        # fit beside the site on a board without PSRAM
        found = names.search(self.site.directory.name_keys(), self.buffer, MAX_CHOICES) if self.buffer else []
        if len(found) == 1:
            self._transfer(("ext", found[0]))
        elif not final and found:
            # several match: the caller may be typing on; read them out after a pause or '#'
            self._wait(now_ms, _INTERDIGIT)
        elif 1 < len(found) <= MAX_CHOICES:
            self.mode = _PICK
            self.choices = found
            self._read_choices(now_ms)
        else:
            self._say("dbn_many" if found else "dbn_none")
            self.tries += 1
            if self.tries > 2:
                self._go("operator", now_ms)
            else:
                self._start_names(now_ms)

    def _read_choices(self, now_ms):
        for i, number in enumerate(self.choices):
            ext = self.site.extension(number)
            self._say("dbn_choice", ext.name if ext else number, i + 1, parts=(("name", number), i + 1))
        self._wait(now_ms, _TIMEOUT)

    def _pick_key(self, k, now_ms):
        if "1" <= k <= "9" and int(k) <= len(self.choices):
            self._transfer(("ext", self.choices[int(k) - 1]))
        elif k == "*":
            self._start_names(now_ms)
        else:
            self._say("invalid")
            self._read_choices(now_ms)

    # ---- PIN entry ------------------------------------------------------------------------

    def _ask_pin(self, now_ms):
        self.mode = _PIN
        self.buffer = ""
        self._emit("menu", "pin")
        self._say("pin_prompt")
        self._wait(now_ms, _TIMEOUT)

    def _pin_key(self, k, now_ms):
        if k == "#":
            if self._pin_right(self.buffer):
                self.buffer = ""
                self._transfer(self.pin[0])
            else:
                self._emit("pin_failed", self.pin[1])
                self._pin_wrong(now_ms)
        elif k == "*":
            self.buffer = ""
            self._wait(now_ms, _TIMEOUT)
        elif len(self.buffer) < PIN_MAX_DIGITS:
            self.buffer += k
            self._wait(now_ms, _TIMEOUT)

    def _pin_right(self, entered):
        ext = self.site.extension(self.pin[1])
        if ext is None or not ext.has_pin() or not entered:
            return False
        return pin_hash(self.site.realm, ext.number, entered) == ext.pin_hash

    def _pin_wrong(self, now_ms, silent=False):
        self.tries += 1
        self.buffer = ""
        if self.tries >= PIN_TRIES:
            self._say("pin_locked")
            self._hangup("pin")
            return
        if not silent:
            self._say("pin_wrong")
        self._ask_pin(now_ms)

    def pin_locked(self, now_ms):
        """The switch's guard locked this caller's PIN: say so and hang up."""
        out = self._begin()
        if self.mode == _PIN:
            self._say("pin_locked")
            self._hangup("pin")
        return out


def _spoken(target):
    """How a target's name is read out (prompts.parts): a person's recording or number, a
    group's or an outside number's digits."""
    if target[0] == "ext":
        return ("name", target[1])
    return ("digits", target[1] or "")
