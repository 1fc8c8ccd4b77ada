"""Open311 GeoReport v2 documents, field for field as the specification names and orders
them, so that clients written against it (FixMyStreet, georeport, city apps) read ours.

The same model is answered as JSON or XML (``api.open311_xml``); a field left ``None`` is
``null`` in JSON and an empty element in XML, as in the specification's examples.
``reporter_name`` and ``reporter_contact`` are ours, not the standard's: present only for the
handlers of the request's area (audited), dropped for everyone else.
"""

from __future__ import annotations

from pydantic import Field

from api.schemas import Answer, Timestamp

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ("text/xml", "application/json")


class Endpoint(Answer):
    specification: str = SPECIFICATION
    url: str
    changeset: Timestamp
    type: str = Field(description="production, test")
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))


class Discovery(Answer):
    changeset: Timestamp
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Service(Answer):
    service_code: str
    service_name: str
    description: str
    metadata: bool = Field(description="true: GET services/{code} lists attributes to send")
    type: str = "realtime"
    keywords: str = Field(description="comma-separated")
    group: str


class Attribute(Answer):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str


class ServiceDefinition(Answer):
    service_code: str
    attributes: list[Attribute]


class Posted(Answer):
    """The answer to ``POST requests``: the id at once (cases are created in real time) and
    a token that ``GET tokens/{token}`` turns back into it."""

    service_request_id: str
    token: str
    service_notice: str | None
    account_id: str | None = None


class Token(Answer):
    service_request_id: str
    token: str


class ServiceRequest(Answer):
    service_request_id: str
    status: str = Field(description="open, closed")
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: Timestamp
    updated_datetime: Timestamp | None
    expected_datetime: Timestamp | None
    address: str | None
    address_id: str | None
    zipcode: str | None = None
    lat: float
    long: float
    media_url: str | None
    reporter_name: str | None = None
    reporter_contact: str | None = None


class Error(Answer):
    code: int = Field(description="the HTTP status")
    description: str = Field(description="the field, then why")
