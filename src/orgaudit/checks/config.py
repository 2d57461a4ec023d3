"""``orgaudit.toml``: thresholds, severities per check, suppressions, and how a roster
is read.

Example::

    [thresholds]
    stale_days = 90
    max_owners = 3
    expiring_within_days = 14         # keys expiring this soon are flagged
    spend_change_percent = 50         # diff reports a key's spend moving this much (%)
    spend_change_min = 10             # ... and by at least this much money

    [policy]
    max_key_age_days = 365            # keys without expiry older than this are flagged

    [severity]
    "key-unused" = "info"

    [roster]                          # how --roster's CSV is read (these are the defaults)
    email_column = "email"
    status_column = "status"
    active_values = ["active"]
    terminated_values = ["terminated"]

    [[suppress]]
    check = "key-unrestricted"        # exact id or glob
    subject = "payments-bot-*"        # subject id or name, exact or glob
    reason = "CI bot, rotated monthly"
    owner = "alice@example.com"
    expires = 2027-03-31

A malformed file is a one-line error naming the line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from orgaudit.checks.findings import AuditSettings, RosterColumns, Suppression
from orgaudit.checks.roster import load_roster
from orgaudit.errors import ConfigError
from orgaudit.vocabulary import Severity

_TOP_LEVEL = {"thresholds", "policy", "severity", "suppress", "roster"}
_ROSTER_TEXT = {"email_column": "email", "status_column": "status"}
_ROSTER_LISTS = {"active_values": "active", "terminated_values": "terminated"}
_THRESHOLDS = {
    "stale_days",
    "max_owners",
    "expiring_within_days",
    "spend_change_percent",
    "spend_change_min",
}
_POLICIES = {"max_key_age_days"}
_SUPPRESSION_KEYS = {"check", "subject", "reason", "owner", "expires"}


def load_settings(
    path: Path | None,
    check_ids: frozenset[str],
    *,
    stale_days: int | None = None,
    max_owners: int | None = None,
    roster: Path | None = None,
) -> AuditSettings:
    """Settings from the config file (if any) with command-line thresholds on top, and
    the ``roster`` CSV (if any) read as the config's ``[roster]`` says."""
    data: dict[str, Any] = {}
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the config {path}: {exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except RecursionError:  # tomllib recurses once per level of nesting
            raise ConfigError(f"{path}: nested too deeply to be a configuration") from None
    where = str(path)

    def fail(message: str, needle: str) -> ConfigError:
        return ConfigError(f"{where}{_line_of(text, needle)}: {message}")

    for key, value in data.items():
        if key not in _TOP_LEVEL:
            raise fail(f"unknown section {key!r} (expected {', '.join(sorted(_TOP_LEVEL))})", key)
        wanted = list if key == "suppress" else dict
        if not isinstance(value, wanted):
            shape = "a list of [[suppress]] tables" if key == "suppress" else f"a [{key}] table"
            raise fail(f"{key} must be {shape}", key)
    thresholds = data.get("thresholds", {})
    policy = data.get("policy", {})
    for section, values, allowed in (
        ("threshold", thresholds, _THRESHOLDS),
        ("policy", policy, _POLICIES),
    ):
        for key, value in values.items():
            if key not in allowed:
                raise fail(f"unknown {section} {key!r}", key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise fail(f"{key} must be a whole number of at least 1", key)
    severities = {}
    for check_id, severity in data.get("severity", {}).items():
        if check_id not in check_ids:
            raise fail(f"unknown check {check_id!r} in [severity]", check_id)
        named = severity.strip().lower() if isinstance(severity, str) else severity
        if named not in tuple(Severity):
            raise fail(f"severity of {check_id} must be one of {', '.join(Severity)}", check_id)
        severities[check_id] = Severity(named)
    suppressions = tuple(
        _suppression(entry, number, fail, check_ids)
        for number, entry in enumerate(data.get("suppress", []))
    )
    columns = _roster_columns(data.get("roster", {}), fail)
    return AuditSettings(
        stale_days=stale_days if stale_days is not None else thresholds.get("stale_days", 90),
        max_owners=max_owners if max_owners is not None else thresholds.get("max_owners", 3),
        expiring_within_days=thresholds.get("expiring_within_days", 14),
        spend_change_percent=thresholds.get("spend_change_percent", 50),
        spend_change_min=thresholds.get("spend_change_min", 10),
        max_key_age_days=policy.get("max_key_age_days"),
        severities=severities,
        suppressions=suppressions,
        roster=None if roster is None else load_roster(roster, columns),
    )


def _roster_columns(
    section: dict[str, Any], fail: Callable[[str, str], ConfigError]
) -> RosterColumns:
    """``[roster]``: the e-mail and status columns' names, and the status values meaning
    active and terminated (compared in any case)."""
    for key, value in section.items():
        if key not in _ROSTER_TEXT and key not in _ROSTER_LISTS:
            known = ", ".join([*_ROSTER_TEXT, *_ROSTER_LISTS])
            raise fail(f"unknown roster setting {key!r} (expected {known})", key)
        if key in _ROSTER_TEXT and not (isinstance(value, str) and value.strip()):
            raise fail(f"[roster] {key} must be a non-empty string", key)
        if key in _ROSTER_LISTS and not (
            isinstance(value, list)
            and value
            and all(isinstance(item, str) and item.strip() for item in value)
        ):
            raise fail(f"[roster] {key} must be a non-empty list of non-empty strings", key)
    text = {key: section.get(key, default) for key, default in _ROSTER_TEXT.items()}
    if text["email_column"].strip().casefold() == text["status_column"].strip().casefold():
        anchor = "status_column" if "status_column" in section else "email_column"
        raise fail("[roster] email_column and status_column must name two columns", anchor)
    lists = {key: tuple(section.get(key, [default])) for key, default in _ROSTER_LISTS.items()}
    active = {v.strip().casefold() for v in lists["active_values"]}
    both = sorted(v for v in lists["terminated_values"] if v.strip().casefold() in active)
    if both:
        anchor = "terminated_values" if "terminated_values" in section else "active_values"
        raise fail(
            f"[roster] {both[0]!r} is both an active and a terminated value (any case)", anchor
        )
    return RosterColumns(
        email=text["email_column"],
        status=text["status_column"],
        active=lists["active_values"],
        terminated=lists["terminated_values"],
    )


def _suppression(
    entry: Any, number: int, fail: Callable[[str, str], ConfigError], check_ids: frozenset[str]
) -> Suppression:
    label = f"[[suppress]] #{number + 1}"
    if not isinstance(entry, dict):
        raise fail(f"{label} must be a table", "[[suppress]]")
    missing = sorted(_SUPPRESSION_KEYS - set(entry))
    extra = sorted(set(entry) - _SUPPRESSION_KEYS)
    anchor = str(entry.get("check", "[[suppress]]"))
    if missing:
        raise fail(f"{label} lacks {', '.join(missing)} (every suppression needs all five)", anchor)
    if extra:
        raise fail(f"{label} has unknown keys {', '.join(extra)}", extra[0])
    for key in ("check", "subject", "reason", "owner"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise fail(f"{label}: {key} must be a non-empty string", anchor)
    if not any(fnmatchcase(check_id, entry["check"]) for check_id in check_ids):
        raise fail(f"{label}: check {entry['check']!r} matches no check id", anchor)
    expires = entry["expires"]
    if isinstance(expires, datetime):
        when = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    elif isinstance(expires, date):
        when = datetime.combine(expires, time.max, tzinfo=UTC)
    else:
        raise fail(f"{label}: expires must be a date such as 2027-03-31", anchor)
    return Suppression(entry["check"], entry["subject"], entry["reason"], entry["owner"], when)


def _line_of(text: str, needle: str) -> str:
    """`` line N`` of the first line holding ``needle``, or nothing if not found."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle and needle in line:
            return f" line {number}"
    return ""
