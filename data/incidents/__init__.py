"""Incidents as cases: the catalogue, departments, reports, the flow, the sweep, figures."""
