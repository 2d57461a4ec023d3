"""What ``orgaudit review`` prints: each step's outcome and the next command to run.

Names from the org reach the terminal through :func:`~orgaudit.render.terminal.shown`
only (as every command's output does): no control character they hold is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from orgaudit.render.terminal import lines_text, shown
from orgaudit.review.campaign import Verified, utc_text
from orgaudit.review.evidence import SCHEMA_VERSION
from orgaudit.review.results import CampaignStatus, Closed, Opened, Verification


def opened_text(opened: Opened) -> str:
    """The campaign opened, its workbook, and what to do next."""
    campaign = opened.campaign
    lines = [
        f"opened campaign {campaign.id} on snapshot {campaign.snapshot_id}: {opened.items} "
        f"item(s) to review, due {campaign.due_on}",
    ]
    if opened.pre_marked:
        lines.append(
            f"{opened.pre_marked} item(s) pre-marked Remove: the roster does not vouch for them"
        )
    lines += [
        f"wrote {opened.workbook}",
        f"evidence pack: {opened.folder} (manifest.json, SHA256SUMS)",
        "",
        "next: send the workbook to the reviewers; when it is back, filled in:",
        f"  orgaudit review close {opened.workbook}",
    ]
    return lines_text(lines)


def closed_text(closed: Closed) -> str:
    """The decisions stored and the evidence written."""
    counted = closed.decisions
    lines = [
        f"closed campaign {closed.campaign.id}: {counted.get('keep', 0)} keep, "
        f"{counted.get('change', 0)} change, {counted.get('remove', 0)} remove, "
        f"{counted.get('undecided', 0)} undecided",
        *(f"wrote {path}" for path in closed.files),
    ]
    if counted.get("change", 0) + counted.get("remove", 0):
        lines += [
            "",
            "next: make the removals and changes in the org, then pull and verify:",
            "  orgaudit pull && orgaudit review verify",
        ]
    return lines_text(lines)


def verification_text(verification: Verification) -> str:
    """What is done, what is outstanding, and whether it is late."""
    campaign = verification.campaign
    counts = {status: 0 for status in Verified}
    for item in verification.items:
        counts[item.status] += 1
    lines = [
        f"campaign {campaign.id}: {counts[Verified.DONE]} done, "
        f"{counts[Verified.OUTSTANDING]} outstanding, {counts[Verified.UNKNOWN]} unknown "
        f"of {len(verification.items)} removal(s) and change(s); due {campaign.due_on}"
        + (" (past due)" if verification.past_due and verification.not_done else ""),
    ]
    for item in verification.items:
        if item.status is not Verified.DONE:
            lines.append(f"  {item.status.value:<12} {item.asked}: {item.detail} [{item.item_id}]")
    lines += [f"wrote {path}" for path in verification.files]
    return lines_text(lines)


def status_table(statuses: Sequence[CampaignStatus]) -> Table | str:
    """Every campaign and where it stands."""
    if not statuses:
        return "no review campaign yet; `orgaudit review open --due YYYY-MM-DD` opens one"
    table = Table(show_edge=False, pad_edge=False)
    columns = (
        "campaign",
        "snapshot",
        "opened",
        "due",
        "items",
        "decided",
        "state",
        "removals done",
    )
    for name in columns:
        table.add_column(
            name, justify="right" if name in ("snapshot", "items", "decided") else "left"
        )
    for status in statuses:
        campaign = status.campaign
        state = status.state.value + (" (overdue)" if status.overdue else "")
        done = f"{status.done}/{status.acting}" if status.verified_at else f"-/{status.acting}"
        table.add_row(
            shown(campaign.id),
            str(campaign.snapshot_id),
            f"{campaign.opened_at:%Y-%m-%d}",
            str(campaign.due_on),
            str(status.items),
            str(status.decided),
            state,
            done,
        )
    return table


def outstanding_text(statuses: Sequence[CampaignStatus]) -> str:
    """The removals and changes each campaign's latest verification did not see done."""
    lines = [
        f"  {status.campaign.id}  {row['status']:<12} {row['asked']}: {row['detail']}"
        for status in statuses
        for row in status.outstanding
    ]
    return lines_text(["not seen done at the latest verification:", *lines] if lines else [])


def status_json(statuses: Sequence[CampaignStatus]) -> dict[str, object]:
    """Every campaign's status as plain values (``review status --json``)."""
    campaigns = [
        {
            "campaign_id": status.campaign.id,
            "snapshot_id": status.campaign.snapshot_id,
            "opened_at": utc_text(status.campaign.opened_at),
            "due_on": status.campaign.due_on.isoformat(),
            "state": status.state.value,
            "overdue": status.overdue,
            "items": status.items,
            "decided": status.decided,
            "removals_and_changes": status.acting,
            "done": status.done,
            "verified_at": status.verified_at,
            "outstanding": [
                {
                    "item_id": row["item_id"],
                    "asked": row["asked"],
                    "status": row["status"],
                    "latest_snapshot": row["snapshot_id"],
                    "detail": row["detail"],
                }
                for row in status.outstanding
            ],
        }
        for status in statuses
    ]
    return {"schema_version": SCHEMA_VERSION, "campaigns": campaigns}
