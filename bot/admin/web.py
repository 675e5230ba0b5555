"""The admin's front door: ``/admin`` sends each member of staff to their first section."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.admin.common import PREFIX, SECTIONS, redirect, staff
from bot.db.models import OfficerRole

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
async def home(request: Request) -> Response:
    """Editors and reviewers start at the articles, supervisors at the dashboard."""
    who = await staff(request, *OfficerRole)
    for section in SECTIONS:
        if section.open_to(who.role):
            return redirect(request, section.path)
    # A duty officer has no section here: the 403 page sends them to the console.
    await staff(request)
    raise AssertionError("staff() refuses a role with no section")  # pragma: no cover
