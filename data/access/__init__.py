"""Accounts, scopes, API keys and the audit log in SQL; who may do what is :mod:`data.policy`."""
