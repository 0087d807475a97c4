"""Schemathesis hooks for scripts/fuzz-api.sh: the credentials each
operation of keyseal's OpenAPI document needs.

An agent route gets the dev agent key, an admin route the dev admin token,
and a step-up route (its security names stepUp) also a fresh step-up token
from POST /admin/auth/step-up, so the fuzz reaches past authentication into
the handlers. Unauthenticated answers are the Go tests' business.
"""

import json
import os
import urllib.request

import schemathesis

BASE = os.environ["KEYSEAL_FUZZ_URL"]
ADMIN = os.environ["KEYSEAL_FUZZ_ADMIN_TOKEN"]
AGENT = os.environ["KEYSEAL_FUZZ_AGENT_KEY"]
STEP_UP_HEADER = "X-Keyseal-StepUp"


def _schemes(case):
    names = set()
    for requirement in case.operation.definition.raw.get("security") or []:
        names.update(requirement)
    return names


def _step_up_token():
    req = urllib.request.Request(
        BASE + "/admin/auth/step-up",
        method="POST",
        headers={"Authorization": "Bearer " + ADMIN},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)["step_up_token"]


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    schemes = _schemes(case)
    if not schemes:
        return
    headers = dict(case.headers or {})
    if "agentKey" in schemes:
        headers["Authorization"] = "Bearer " + AGENT
    if "adminJWT" in schemes:
        headers["Authorization"] = "Bearer " + ADMIN
    if "stepUp" in schemes:
        headers[STEP_UP_HEADER] = _step_up_token()
    case.headers = headers
