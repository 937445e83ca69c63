"""Usage the verifier observes at forward auth: request counts and client networks per token.

Nothing here comes from the agent. ``networks`` reduces a client address to its network,
``observer`` aggregates in memory and flushes on an interval, ``store`` holds the flushed
rows. These are the verifier-observed fields of the manifest (``attest.catalog.observed``).
"""
