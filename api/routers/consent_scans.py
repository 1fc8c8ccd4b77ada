"""The scanned consent form over HTTP: upload (multipart, part ``scan``) and read it.

Thin: checking, stripping and storing are ``data.care.consent_scan``. Only the staff who may
change an elder (care staff of the home area, admins: ``Action.enrol_elders``) upload or read
a scan; every read is audited like any read of an elder (``elder_consent``, with the reason
when one is given). A scan is served as an attachment, never shown inline by the browser.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from api.deps import Reason, SessionDep
from api.schemas.consent_scans import ConsentScan
from api.security import Principal, audit_subjects, require
from api.uploads import ScanDep, multipart_body
from data.access.reasons import said
from data.care import consent_scan
from data.policy import Action
from geo.errors import InvalidInput

router = APIRouter(prefix="/elders", tags=["elders"])

Enroller = Annotated[Principal, Depends(require(Action.enrol_elders))]


def scan_url(elder_id: int, consent_id: int) -> str:
    return f"/elders/{elder_id}/consents/{consent_id}/scan"


@router.put(
    "/{elder_id}/consents/{consent_id}/scan",
    response_model=ConsentScan,
    summary="Attach the scanned consent form (PDF, JPEG or PNG; images lose their metadata)",
    openapi_extra=multipart_body("scan"),
)
def upload(
    request: Request,
    principal: Enroller,
    data: ScanDep,
    session: SessionDep,
    elder_id: int,
    consent_id: int,
) -> dict[str, Any]:
    if data is None:
        raise InvalidInput("required: a multipart/form-data part named 'scan'", field="scan")
    clean = consent_scan.clean(data)
    row = consent_scan.store(
        session, elder_id, consent_id, clean, scope=principal.scope, by=principal.name
    )
    audit_subjects(
        session,
        request,
        principal,
        "elder_consent",
        [elder_id],
        said("scan_attached", consent=consent_id, type=clean.content_type),
    )
    return row | {"url": scan_url(elder_id, consent_id)}


@router.get(
    "/{elder_id}/consents/{consent_id}/scan",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}},
    summary="The scanned consent form (audited)",
)
def read(
    request: Request,
    principal: Enroller,
    session: SessionDep,
    elder_id: int,
    consent_id: int,
    reason: Reason = None,
) -> Response:
    kind, body = consent_scan.read(session, elder_id, consent_id, scope=principal.scope)
    why = said("scan_read", consent=consent_id).noted(reason, "why")
    audit_subjects(session, request, principal, "elder_consent", [elder_id], why)
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}[kind]
    return Response(
        body,
        media_type=kind,
        headers={
            "Content-Disposition": f'attachment; filename="consent-{consent_id}.{extension}"',
            "Cache-Control": "no-store",
        },
    )
