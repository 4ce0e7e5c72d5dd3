"""Local state on SQLite (WAL) in the workspace's state/ folder: what survives between runs.

The send ledger (who was sent what), the suppression store (who is never mailed again) and the
event store (what SendGrid said happened afterwards).
"""
