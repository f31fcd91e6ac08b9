"""The staff CSV: its columns, their accepted spellings, and each row as an extension dict.

`read_staff(loaded, text, max_rows)` takes the decoded text (`sitefiles` reads the bytes, checks
their size and encoding) and fills `loaded.extensions` with one dict per row (`FIELDS`), noting
the line each row starts on. It guesses the delimiter (',' ';' or tab), folds column aliases,
and recognises a FreePBX Bulk Handler extensions export. Problems go to `loaded`: file-level ones
at a line of the CSV, row-level ones as `("staff", row, column)`.
"""

import csv
import io

from zongji.site import schema

# canonical column -> accepted spellings (compared after _norm: case, '_'/'-' and spaces folded)
# (Chinese headers as a Chinese office's own spreadsheet names them: 分机号, 姓名, 部门, 手机, 密码)
COLUMNS = {
    "number": ("number", "extension", "ext", "short number", "分机号", "分机", "分机号码"),
    "name": ("name", "display name", "full name", "姓名", "名字"),
    "department": ("department", "dept", "部门"),
    "secret": ("secret", "password", "sip secret", "密码", "sip密码"),
    "mobile": ("mobile", "cell", "mobile phone", "手机", "手机号", "手机号码"),
    "class": ("class", "cos", "class of service", "权限"),
    "follow_me": ("follow_me", "ring_time", "振铃时间"),
    "pin": ("pin", "个人密码"),
}
FIELDS = ("number", "name", "department", "secret", "mobile", "class", "follow_me", "pin", "keys")
REQUIRED_COLUMNS = ("number", "name")
# A FreePBX Bulk Handler extensions export has these (and ~80 more we ignore). Its `password`
# is the user-manager password, not the SIP one, so in that layout only `secret` is the secret.
FREEPBX_MARK = ("extension", "name", "secret", "tech")
FREEPBX_EXTRA = {
    "findmefollow_grplist": "_grplist",
    "findmefollow_grptime": "_grptime",
    "findmefollow_enabled": "_fm_enabled",
}


def _norm(header):
    return " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())


_ALIAS = {_norm(a): col for col in COLUMNS for a in COLUMNS[col]}


def _delimiter(text):
    """',' unless the header line clearly uses ';' (Excel in DE/FR) or tabs."""
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def read_staff(loaded, text, max_rows):
    """Every row of the CSV `text` into `loaded.extensions`; `loaded.fatal` if it can't be read."""
    name = loaded.csv_name
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = None
    prev = 0
    try:
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                loaded._header_line = start
                header = _header(loaded, row, start)
                if header is None:
                    loaded.fatal = True
                    return
                continue
            if len(loaded.extensions) >= max_rows:
                loaded.add_at(
                    "error",
                    name,
                    start,
                    "%s has more than %d rows, the most zongji "
                    "reads (sitefiles.MAX_CSV_ROWS): is this the right file?" % (name, max_rows),
                )
                loaded.fatal = True
                return
            _row(loaded, header, row, start)
    except csv.Error as e:
        loaded.add_at(
            "error",
            name,
            prev + 1,
            'this line can\'t be read as CSV (%s): check its quotes, a quote inside a cell is written twice ("")' % e,
        )
        loaded.fatal = True
        return
    if header is None:
        loaded.add_at(
            "error",
            name,
            1,
            "%s is empty: it needs a header row (number,name,...) and one row per extension" % name,
        )
        loaded.fatal = True


def _header(loaded, row, line):
    """Column index -> field name, or None if a required column is missing."""
    cols = [_norm(h) for h in row]
    name = loaded.csv_name
    loaded.freepbx = all(_norm(m) in cols for m in FREEPBX_MARK)
    fp = {_norm(k): v for k, v in FREEPBX_EXTRA.items()}
    mapping = {}
    seen = {}
    for j, col in enumerate(cols):
        if not col:
            continue
        if loaded.freepbx:
            field = None if col == "password" else _ALIAS.get(col) or fp.get(col)
            if field is None:
                continue  # the export's other ~80 columns mean nothing here
        else:
            field = _ALIAS.get(col)
        if field is None:
            hint = schema.suggest(col, list(_ALIAS))
            loaded.add_at(
                "warning",
                name,
                line,
                "unknown column '%s' is ignored%s"
                % (
                    row[j].strip(),
                    ": did you mean '%s'?" % hint if hint else " (known columns: %s)" % ", ".join(COLUMNS),
                ),
            )
            continue
        if field in seen:
            loaded.add_at(
                "error",
                name,
                line,
                "columns '%s' and '%s' both give the %s: keep one" % (row[seen[field]].strip(), row[j].strip(), field),
            )
            continue
        seen[field] = j
        mapping[j] = field
    missing = [f for f in REQUIRED_COLUMNS if f not in seen]
    for f in missing:
        loaded.add_at(
            "error",
            name,
            line,
            "the header row has no '%s' column (also accepted: %s); "
            "the first row of %s must name the columns, e.g. number,name,department,secret"
            % (f, ", ".join(repr(a) for a in COLUMNS[f][1:]) or "-", name),
        )
    return None if missing else (mapping, len(row))


def _row(loaded, header, row, line):
    i = len(loaded.extensions)
    loaded._row_lines.append(line)
    mapping, width = header
    values = {}
    for j, field in mapping.items():
        values[field] = row[j].strip() if j < len(row) else ""
    if any(cell.strip() for cell in row[width:]):
        loaded.add(
            "warning",
            ("staff", i),
            "this row has more cells than the header has columns; the "
            'extra cells are ignored (a comma inside a cell needs "quotes")',
        )
    if loaded.freepbx:
        _freepbx_row(values)
    ext = {f: values.get(f, "") for f in FIELDS}
    follow = ext["follow_me"]
    ext["follow_me"] = 0
    if follow:
        if follow.isascii() and follow.isdigit():
            ext["follow_me"] = int(follow)
        else:
            loaded.add(
                "error",
                ("staff", i, "follow_me"),
                "follow_me '%s' of extension %s must be whole "
                "seconds the desk phone rings before the mobile, e.g. 20 (0 = never)" % (follow, ext["number"]),
            )
    ext["keys"] = _keys(ext["name"])
    loaded.extensions.append(ext)


def _freepbx_row(values):
    """Follow-me from the export: the list's external entry (ends in '#') is the mobile."""
    mobile = ""
    for entry in values.pop("_grplist", "").split("-"):
        entry = entry.strip()
        if entry.endswith("#") and len(entry) > 1:
            mobile = entry[:-1]
            break
    if mobile and not values.get("mobile"):
        values["mobile"] = mobile
    enabled = values.pop("_fm_enabled", "yes").lower() not in ("", "no", "0", "false")
    grptime = values.pop("_grptime", "")
    # follow-me rings the desk phone first: a virtual extension (no secret) is mobile-only
    has_desk = bool(values.get("secret"))
    if not values.get("follow_me") and enabled and mobile and has_desk and grptime.isdigit():
        values["follow_me"] = grptime


def _keys(name):
    try:
        from zongji_companion import namekeys  # pypinyin is slow to import: only when needed
    except ImportError:  # pragma: no cover - the module lands separately
        return ""
    try:
        return namekeys.name_keys(name)
    except ValueError:
        return ""
