"""Elder care: enrolment, consent, device reports, safe zones and alerts (queries + service)."""
