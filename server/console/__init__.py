"""The console: a read-only web application for security teams over what the verifier holds."""
