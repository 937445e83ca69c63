"""``envattest proxy``: a loopback proxy that gives unmodified coding tools bound access.

The tool talks plain HTTP to 127.0.0.1 with a per-run secret in its base URL; the proxy
forwards to the organisation's gateway over HTTPS with the device's access token and, for a
DPoP-bound token, a fresh proof of possession signed by the enrolled key on every request.

Modules: ``secret`` (who may use it), ``rewrite`` (URLs and headers), ``credentials`` (token
refresh, proofs), ``server`` (forwarding and streaming), ``h11client`` (one connection to the
gateway), ``pool`` (kept-alive connections, TLS), ``tunnel`` (through the organisation's HTTP
or SOCKS5 proxy), ``running`` (the background thread), ``device`` (this enrolled device),
``heldkey`` (a TPM session held between proofs), ``toolenv`` (per-tool base-URL variables).
"""

from __future__ import annotations
