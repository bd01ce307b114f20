"""Container health probe: GET the service's own health endpoint; exit 0 when it answers 2xx.

Standard library only (the images have no curl). Which endpoint depends on $GENBUS_SERVICE, set
in the image; `python /app/healthcheck.py /readyz` checks readiness instead of liveness.
$GENBUS_HEALTHCHECK_URL overrides the URL entirely.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def _default_url(service: str, path: str | None) -> str:
    if service == "api":
        return f"http://127.0.0.1:{os.environ.get('GENBUS_API_PORT', '8000')}{path or '/healthz'}"
    if service == "provider-sim":
        # The simulator has no /healthz; its config endpoint is cheap and needs no auth.
        return f"http://127.0.0.1:{os.environ.get('SIM_PORT', '9100')}{path or '/_sim/config'}"
    return f"http://127.0.0.1:{os.environ.get('GENBUS_HEALTH_PORT', '8080')}{path or '/healthz'}"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else None
    url = os.environ.get("GENBUS_HEALTHCHECK_URL") or _default_url(
        os.environ.get("GENBUS_SERVICE", ""), path
    )
    try:
        with urllib.request.urlopen(url, timeout=2.5) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
