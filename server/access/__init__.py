"""Access checks on the relying-party hot path: forward auth and introspection.

``checker`` runs the ordered token checks; ``rowcache`` keeps device and credential rows
with revocation effective at once (an epoch read per batch of requests); ``replay`` spends
DPoP proof ids across replicas; ``batch`` runs database work on dedicated threads, one call
per batch of concurrent requests, so the event loop never waits for the database.
"""
