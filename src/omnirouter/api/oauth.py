"""OAuth PKCE: POST /auth/keys/code (a code, management key) and POST /auth/keys (a code exchanged
once for a new inference key). The browser's consent page is api/consent.py; the work is
governance.oauth's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.governance import key_service as ks
from omnirouter.governance import oauth
from omnirouter.openapi_doc import Operation
from omnirouter.state import state


async def create_code(request: Request) -> JSONResponse:
    creator = await auth.management_key(request)
    body: oauth.CreateCode = ks.parse(await request.body(), oauth.CreateCode)
    issued = await oauth.create_code(state(request).db, body, creator_user_id=creator.creator_user_id)
    return JSONResponse(issued.answer())


async def exchange(request: Request) -> JSONResponse:
    # No key: the app has none yet. The code and its verifier are the credential (a bearer sent along,
    # as SDKs configured with a key do, is ignored).
    st = state(request)
    body: oauth.Exchange = ks.parse(await request.body(), oauth.Exchange)
    record, secret = await oauth.exchange(st.db, body, keys=st.keys)
    return JSONResponse(oauth.ExchangeResponse(key=secret, user_id=record.creator_user_id))


routes = [
    Route("/auth/keys/code", create_code, methods=["POST"]),
    Route("/auth/keys", exchange, methods=["POST"]),
]

TAGS = {"OAuth": "OAuth PKCE: apps get a key for their user (consent page at /auth, outside /api/v1)"}

OPERATIONS = {
    ("/auth/keys/code", "post"): Operation(
        operation_id="createAuthKeysCode",
        summary="Create authorization code",
        tag="OAuth",
        auth="management",
        body=oauth.CreateCode,
        response=oauth.CodeResponse,
        response_description="The code (`data.id`), valid for 5 minutes and exchangeable once",
        errors=(400, 401, 403, 500),
        description=(
            "What the consent page does once the operator approves: a code for POST /auth/keys, carrying the "
            "new key's `limit`, `usage_limit_type`, `expires_at`, `key_label` (its name; defaults to the "
            "callback host) and `workspace_id`. A `code_challenge` without a method is `plain` (RFC 7636)."
        ),
    ),
    ("/auth/keys", "post"): Operation(
        operation_id="exchangeAuthCodeForAPIKey",
        summary="Exchange authorization code for API key",
        tag="OAuth",
        auth="none",
        body=oauth.Exchange,
        response=oauth.ExchangeResponse,
        response_description="The new inference key",
        errors=(400, 403, 500),
        description=(
            "No key needed: the code and, when it was created with a challenge, its `code_verifier` are the "
            "credential. 403 for an unknown, expired or already exchanged code or a wrong verifier; 400 for a "
            "missing verifier or a `code_challenge_method` other than the code's. A failure issues nothing."
        ),
    ),
}
