"""HTTP routes, one module per concern; each exposes ``router(runtime) -> APIRouter``."""
