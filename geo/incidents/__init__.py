"""Incidents as cases: the state machine, deadlines and escalation, as pure rules."""
