"""envattest verifier server: checks evidence, keeps the audit log, issues access tokens."""
