"""A small, complete site for core tests, built in code (no TOML: MicroPython has no parser)."""

from zongji.site import schema
from zongji.site.bundle import stored_row
from zongji.site.directory import STAFF_FIELDS
from zongji.site.model import Site, realm_of

STAFF = [
    # number, name, department, secret, mobile, class, follow_me, pin, keys: as the staff CSV
    # has them; build() keeps only their hashes, as the bundle does. Phones know the secrets.
    ["200", "Operator Desk 前台", "Admin", "op-secret-200", "", "staff", 0, "", "67372867 3375 7426 824"],
    ["201", "王小明", "Sales", "s3cret-201-x", "13800138001", "staff", 20, "", "9264 9426.6464"],
    ["202", "Lily 王丽", "Sales", "s3cret-202-x", "", "staff", 0, "", "5459 9264 54"],
    ["203", "张伟", "Support", "s3cret-203-x", "", "manager", 0, "4321", "94264 934"],
    ["204", "John Smith", "Support", "s3cret-204-x", "", "staff", 0, "", "5646 76484"],
    ["205", "王芳", "Finance", "", "13900139005", "staff", 0, "", "9264 3264"],
    ["210", "Wang Wei", "Sales", "s3cret-210-x", "", "internal", 0, "", "9264 934"],
]


def raw_site(**overrides):
    site = {
        "branch": {
            "name": "Test Branch 测试",
            "country": "CN",
            "timezone": "Asia/Shanghai",
            "tz": [[1577808000, 28800]],
        },
        "staff": {"default_class": "internal"},
        "operator": {"target": "200"},
        "attendant": {"main_menu": "main"},
        "dialplan": {"interdigit_timeout": 3, "outside_prefix": "0"},
        "menus": {
            "main": {
                "number": "800",
                "prompt": "Welcome. Sales press 1, support press 2, directory press 9, operator press 0.",
                "timeout": 5,
                "retries": 2,
                "dial_extensions": True,
                "options": {"1": "600", "2": "menu:support", "9": "directory", "0": "operator", "*": "repeat"},
            },
            "support": {
                "prompt": "Support. Hardware press 1, software press 2, star to go back.",
                "options": {"1": "203", "2": "204", "*": "back", "#": "hangup"},
                "on_timeout": "601",
            },
            "closed": {"prompt": "We are closed.", "options": {"0": "operator"}, "on_timeout": "hangup", "retries": 0},
        },
        "groups": {
            "600": {"name": "Sales 销售", "members": ["201", "202", "210"], "strategy": "ring-all"},
            "601": {
                "name": "Support 技术支持",
                "members": ["203", "204"],
                "strategy": "in-order",
                "member_timeout": 10,
            },
        },
        "hours": {
            "open": ["mon-fri 09:00-12:00,13:00-18:00"],
            "holidays": ["2026-10-01..2026-10-07"],
            "workdays": ["2026-10-10"],
            "closed": "menu:closed",
        },
        "dialout": {
            "classes": {
                "staff": {"allow": ["local", "mobile", "national"]},
                "manager": {"allow": ["local", "mobile", "national", "international"], "pin": ["international"]},
            }
        },
        "trunk": {
            "host": "127.0.0.1",
            "port": 5070,
            "username": "branch",
            "password": "trunkpass",
            "did": {"02155550100": "menu:main", "02155550199": "201"},
        },
    }
    for key in overrides:
        site[key] = overrides[key]
    return site


def ext_dicts(rows=None):
    return [dict(zip(STAFF_FIELDS, r)) for r in (rows if rows is not None else STAFF)]


_SECRETS = {}  # number -> secret of every row build() was given: what the phones know


def secret(number):
    """The SIP secret a phone of `number` registers with (the site itself keeps only HA1s)."""
    if number in _SECRETS:
        return _SECRETS[number]
    for r in STAFF:
        if r[0] == number:
            return r[3]
    return None


def build(raw=None, rows=None):
    """A Site from staff rows (STAFF_FIELDS order), hashed with the site's realm."""
    site, problems = schema.normalize(raw if raw is not None else raw_site())
    errors = [p for p in problems if p[0] == "error"]
    assert not errors, errors
    realm = realm_of(site)
    exts = ext_dicts(rows)
    for e in exts:
        _SECRETS[e["number"]] = e["secret"]
    return Site(site, [stored_row(e, realm) for e in exts])


# Wednesday 2026-11-25 10:30 (open), Wednesday 20:30 (closed), National Day (holiday),
# Saturday 2026-10-10 (make-up workday, open)
OPEN = (2026, 11, 25, 10, 30, 2)
EVENING = (2026, 11, 25, 20, 30, 2)
HOLIDAY = (2026, 10, 2, 10, 0, 4)
WORKDAY_SAT = (2026, 10, 10, 10, 0, 5)
