"""Every operation the server serves, driven through the official SDKs' typed methods.

The official SDKs (`openrouter` on PyPI, `@openrouter/sdk` on npm) validate every response strictly:
an answer they cannot parse fails here, as it would fail their users. The Python SDK runs in this
process; the TypeScript SDK runs in one node process for all its operations (tests/sdk_ts/conformance.mjs,
its package installed by scripts/test), skipped with a reason where node or the package is missing,
except in CI (CI=true), where that is a failure.

When a later issue adds an endpoint, it joins this module: add its operations to ROUTES, a Python
check to PYTHON, and a step to tests/sdk_ts/conformance.mjs. `test_every_served_operation_is_covered`
fails until all three exist. An operation the SDKs have no method for (the legacy `GET /auth/key`,
`POST /credits/coinbase`, `/openapi.json`) is fetched over HTTP and parsed with the SDK's model for
its shape, so the SDK still judges it. Where they have neither method nor model (`/messages`,
`/messages/count_tokens`, `/completions`), the Python check parses with the models of the SDK whose API
it is (Anthropic's, OpenAI's) and the TypeScript step checks the shapes those SDKs declare.

The management operations (guardrails, workspaces, BYOK keys, members) make what they read with the
management key; organisation members, which no API creates, are added as `omnirouter members add` adds
them (its service, on the gateway's database). The gateway has an encryption key, so BYOK writes work.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pydantic
import pytest
from openrouter import OpenRouter, errors, operations
from openrouter.utils.unmarshal_json_response import unmarshal_json_response
from starlette.routing import Route

from omnirouter.app import api_routes
from omnirouter.governance import workspace_service
from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.testing import Reply, Stream
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import Gateway
from tests.sdk_ts_run import TS_DIR, require_node

# The SDK warns when it reads a field its schema marks deprecated (e.g. /key's `rate_limit`), which the
# contract still requires the server to send.
pytestmark = pytest.mark.filterwarnings("ignore:.*DEPRECATED.*:DeprecationWarning")

HELLO = [{"role": "user", "content": "hello conformance"}]
MODEL = "test/alpha"

# Each (method, path) the server routes, and the operations that drive it (named after the
# TypeScript SDK's methods; a plain "METHOD /path" where the SDKs have none).
ROUTES: dict[tuple[str, str], list[str]] = {
    ("POST", "/chat/completions"): ["chat.send", "chat.send(stream)"],
    ("GET", "/models"): ["models.list"],
    ("GET", "/models/count"): ["models.count"],
    ("GET", "/models/user"): ["models.listForUser"],
    ("GET", "/model/{author}/{slug}"): ["models.get"],
    ("GET", "/models/{author}/{slug}/endpoints"): ["endpoints.list"],
    ("GET", "/providers"): ["providers.list"],
    ("GET", "/endpoints/zdr"): ["endpoints.listZdrEndpoints"],
    ("GET", "/keys"): ["apiKeys.list"],
    ("POST", "/keys"): ["apiKeys.create"],
    ("GET", "/keys/{hash}"): ["apiKeys.get"],
    ("PATCH", "/keys/{hash}"): ["apiKeys.update"],
    ("DELETE", "/keys/{hash}"): ["apiKeys.delete"],
    ("GET", "/key"): ["apiKeys.getCurrentKeyMetadata"],
    ("GET", "/auth/key"): ["GET /auth/key"],
    ("GET", "/credits"): ["credits.getCredits"],
    ("POST", "/credits/coinbase"): ["POST /credits/coinbase"],
    ("GET", "/generation"): ["generations.getGeneration"],
    ("GET", "/generation/content"): ["generations.listGenerationContent"],
    ("GET", "/openapi.json"): ["GET /openapi.json"],
    ("POST", "/responses"): ["responses.send", "responses.send(stream)"],
    ("POST", "/messages"): ["POST /messages", "POST /messages(stream)"],
    ("POST", "/messages/count_tokens"): ["POST /messages/count_tokens"],
    ("POST", "/completions"): ["POST /completions", "POST /completions(stream)"],
    ("GET", "/health/live"): ["GET /health/live"],
    ("GET", "/health/ready"): ["GET /health/ready"],
    ("GET", "/presets"): ["presets.list"],
    ("GET", "/presets/{slug}"): ["presets.get"],
    ("GET", "/presets/{slug}/versions"): ["presets.listVersions"],
    ("GET", "/presets/{slug}/versions/{version}"): ["presets.getVersion"],
    ("POST", "/presets/{slug}/chat/completions"): ["presets.createPresetsChatCompletions"],
    ("POST", "/presets/{slug}/messages"): ["presets.createPresetsMessages"],
    ("POST", "/presets/{slug}/responses"): ["presets.createPresetsResponses"],
    ("POST", "/auth/keys/code"): ["oAuth.createAuthCode"],
    ("POST", "/auth/keys"): ["oAuth.exchangeAuthCodeForAPIKey"],
    ("GET", "/guardrails"): ["guardrails.list"],
    ("POST", "/guardrails"): ["guardrails.create"],
    ("GET", "/guardrails/{id}"): ["guardrails.get"],
    ("PATCH", "/guardrails/{id}"): ["guardrails.update"],
    ("DELETE", "/guardrails/{id}"): ["guardrails.delete"],
    ("GET", "/guardrails/assignments/keys"): ["guardrails.listKeyAssignments"],
    ("GET", "/guardrails/assignments/members"): ["guardrails.listMemberAssignments"],
    ("GET", "/guardrails/{id}/assignments/keys"): ["guardrails.listGuardrailKeyAssignments"],
    ("GET", "/guardrails/{id}/assignments/members"): ["guardrails.listGuardrailMemberAssignments"],
    ("POST", "/guardrails/{id}/assignments/keys"): ["guardrails.bulkAssignKeys"],
    ("POST", "/guardrails/{id}/assignments/keys/remove"): ["guardrails.bulkUnassignKeys"],
    ("POST", "/guardrails/{id}/assignments/members"): ["guardrails.bulkAssignMembers"],
    ("POST", "/guardrails/{id}/assignments/members/remove"): ["guardrails.bulkUnassignMembers"],
    ("GET", "/workspaces"): ["workspaces.list"],
    ("POST", "/workspaces"): ["workspaces.create"],
    ("GET", "/workspaces/{id}"): ["workspaces.get"],
    ("PATCH", "/workspaces/{id}"): ["workspaces.update"],
    ("DELETE", "/workspaces/{id}"): ["workspaces.delete"],
    ("GET", "/workspaces/{id}/members"): ["workspaces.listMembers"],
    ("POST", "/workspaces/{id}/members/add"): ["workspaces.bulkAddMembers"],
    ("POST", "/workspaces/{id}/members/remove"): ["workspaces.bulkRemoveMembers"],
    ("GET", "/workspaces/{id}/budgets"): ["workspaces.listBudgets"],
    ("GET", "/workspaces/{id}/budgets/{interval}"): ["workspaces.getBudget"],
    ("PUT", "/workspaces/{id}/budgets/{interval}"): ["workspaces.setBudget"],
    ("DELETE", "/workspaces/{id}/budgets/{interval}"): ["workspaces.deleteBudget"],
    ("GET", "/organization/members"): ["organization.listMembers"],
    ("GET", "/byok"): ["byok.list"],
    ("POST", "/byok"): ["byok.create"],
    ("GET", "/byok/{id}"): ["byok.get"],
    ("PATCH", "/byok/{id}"): ["byok.update"],
    ("DELETE", "/byok/{id}"): ["byok.delete"],
}
OPERATIONS = [op for ops in ROUTES.values() for op in ops]

# The operations beyond chat are driven through both SDKs by their own test modules, against gateways
# with the sandbox's model of each operation and fakes of its upstreams: CONFORMANCE in
# tests/test_<name>.py and the steps of tests/sdk_ts/<name>.mjs. Here, only that every one is.
MODALITY_ROUTES: dict[tuple[str, str], list[str]] = {
    ("POST", "/embeddings"): ["embeddings.generate"],
    ("GET", "/embeddings/models"): ["embeddings.listModels"],
    ("POST", "/rerank"): ["rerank.rerank"],
    ("POST", "/images"): ["images.generate"],
    ("POST", "/images/generations"): ["POST /images/generations"],
    ("POST", "/images/edits"): ["POST /images/edits"],
    ("GET", "/images/models"): ["images.listModels"],
    ("GET", "/images/models/{author}/{slug}/endpoints"): ["images.listModelEndpoints"],
    ("POST", "/audio/speech"): ["tts.createSpeech"],
    ("POST", "/audio/transcriptions"): ["stt.createTranscription", "stt.createTranscriptionMultipart"],
    ("POST", "/videos"): ["videoGeneration.generate"],
    ("GET", "/videos/{jobId}"): ["videoGeneration.getGeneration"],
    ("GET", "/metrics"): ["GET /metrics"],
    ("GET", "/videos/{jobId}/content"): ["videoGeneration.getVideoContent"],
    ("GET", "/videos/models"): ["videoGeneration.listVideosModels"],
    ("GET", "/files"): ["files.list"],
    ("POST", "/files"): ["files.upload"],
    ("GET", "/files/{file_id}"): ["files.retrieve"],
    ("DELETE", "/files/{file_id}"): ["files.delete"],
    ("GET", "/files/{file_id}/content"): ["files.download"],
    ("GET", "/observability/destinations"): ["observability.list"],
    ("POST", "/observability/destinations"): ["observability.create"],
    ("GET", "/observability/destinations/{id}"): ["observability.get"],
    ("PATCH", "/observability/destinations/{id}"): ["observability.update"],
    ("DELETE", "/observability/destinations/{id}"): ["observability.delete"],
    ("GET", "/activity"): ["analytics.getUserActivity"],
    ("GET", "/analytics/meta"): ["analytics.getAnalyticsMeta"],
    ("POST", "/analytics/query"): ["analytics.queryAnalytics"],
    ("POST", "/generation/feedback"): ["generations.submitFeedback"],
    ("GET", "/classifications/task"): ["classifications.getTaskClassifications"],
    ("GET", "/benchmarks"): ["benchmarks.getBenchmarks"],
    ("GET", "/datasets/app-rankings"): ["datasets.getAppRankings"],
    ("GET", "/datasets/rankings-daily"): ["datasets.getRankingsDaily"],
    ("GET", "/datasets/session-cost"): ["datasets.getSessionCost"],
}
MODALITY_TESTS = (
    "embeddings", "rerank", "images", "speech", "transcriptions", "videos", "files",
    "metrics", "observability_destinations", "analytics_sdk",
)  # fmt: skip
# Driven through the OpenAI SDK alone: the OpenRouter SDKs have no method for them.
OPENAI_SDK_ONLY = {"POST /images/generations", "POST /images/edits"}


# Plugins, server tools and the response cache are options of the inference operations rather than
# operations: each is driven through the Python SDK by its own test module, and through @openrouter/sdk
# by the steps of a tests/sdk_ts script that module runs. Here, only that every one is.
PLUGIN_TESTS: dict[str, tuple[str, str]] = {
    "moderation": ("plugin_moderation", "plugins_guard.mjs"),
    "fusion": ("pareto_router", "fusion_pareto.mjs"),
    "file-parser": ("plugin_file_parser", "fetch_files.mjs"),
    "web-fetch": ("plugin_file_parser", "fetch_files.mjs"),
    "web": ("plugin_web", "web_search.mjs"),
    "context-compression": ("plugin_compression", "plugins_guard.mjs"),
    "response-healing": ("plugin_healing", "plugins_guard.mjs"),
    "pareto-router": ("pareto_router", "fusion_pareto.mjs"),
    "openrouter:datetime": ("server_tools", "server_tools.mjs"),
    "openrouter:web_search": ("server_tools", "server_tools.mjs"),
    "openrouter:web_fetch": ("server_tools", "server_tools.mjs"),
    "response-cache": ("response_cache", "response_cache.mjs"),
}


def served_operations() -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in api_routes()
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    """One gateway for the module, storing prompts so that /generation/content has something to show, and
    with an encryption key so that BYOK keys can be written."""
    gateway = Gateway(
        tmp_path_factory.mktemp("conformance"),
        standard_config(fake_a.base_url, fake_b.base_url),
        log_prompts=True,
        encryption_key=new_encryption_key(),
    ).start()
    yield gateway
    gateway.stop()


class Ctx:
    """What a check needs: the gateway, an inference key, and SDK clients for it and for the management key."""

    def __init__(self, gw: Gateway, fake: Any) -> None:
        self.gw = gw
        self.fake = fake
        self.key_info = gw.create_key(name="conformance", limit=3)
        self.key: str = self.key_info["key"]
        self.sdk = OpenRouter(api_key=self.key, server_url=gw.api)
        self.admin = OpenRouter(api_key=gw.management_key, server_url=gw.api)

    def close(self) -> None:
        self.sdk.__exit__(None, None, None)
        self.admin.__exit__(None, None, None)

    def http(self, method: str, path: str, key: str | None = None, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.request(method, self.gw.api + path, headers=headers, json=body, timeout=30)

    def events(self, path: str, body: dict[str, Any]) -> list[tuple[str | None, str]]:
        """A stream's SSE events as (event name, data text), comments skipped."""
        res = self.http("POST", path, body=body | {"stream": True})
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream"), res.text
        found: list[tuple[str | None, str]] = []
        for block in res.text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
            if "data" in fields:
                found.append((fields.get("event"), fields["data"]))
        return found

    def member(self, role: str = "member") -> str:
        """An organisation member, as `omnirouter members add` creates one (no API does): their user id."""
        return add_member(self.gw, role)

    def generation(self) -> str:
        self.fake.script(Reply("for the record", prompt_tokens=7, completion_tokens=3))
        return self.sdk.chat.send(model=MODEL, messages=HELLO).id


@pytest.fixture
def ctx(gw: Gateway, fake_a: Any) -> Iterator[Ctx]:
    c = Ctx(gw, fake_a.fake)
    yield c
    c.close()


def unique(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def add_member(gw: Gateway, role: str = "member") -> str:
    """Through the service `omnirouter members add` runs, on the gateway's own loop and database."""
    import asyncio

    body = workspace_service.CreateMember(
        email=f"{unique('member')}@example.com",
        first_name="Jane",
        last_name="Doe",
        role=role,  # type: ignore[arg-type]
    )
    assert gw.loop is not None
    return asyncio.run_coroutine_threadsafe(workspace_service.add_org_member(gw.state.db, body), gw.loop).result(10).id


def alpha_cost(prompt: int, completion: int) -> Decimal:
    return prompt * Decimal(ALPHA_PRICES["prompt"]) + completion * Decimal(ALPHA_PRICES["completion"])


# -- the Python SDK, one check per operation


def chat_send(c: Ctx) -> None:
    c.fake.script(Reply("conformant", prompt_tokens=7, completion_tokens=3))
    res = c.sdk.chat.send(model=MODEL, messages=HELLO)
    assert res.choices[0].message.content == "conformant"
    assert res.model == MODEL and res.id.startswith("gen-")
    assert res.usage is not None and res.usage.prompt_tokens == 7 and res.usage.completion_tokens == 3
    assert Decimal(str(res.usage.cost)) == alpha_cost(7, 3)


def chat_send_stream(c: Ctx) -> None:
    c.fake.script(Stream(content="one two three", prompt_tokens=5, completion_tokens=3))
    chunks = list(c.sdk.chat.send(model=MODEL, messages=HELLO, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "one two three"
    assert chunks[-1].usage is not None and Decimal(str(chunks[-1].usage.cost)) == alpha_cost(5, 3)


def models_list(c: Ctx) -> None:
    page = c.sdk.models.list()
    assert page is not None
    assert {m.id for m in page.result.data} == {"test/alpha", "test/beta", "test/gamma", "test/reasoner"}


def models_count(c: Ctx) -> None:
    page = c.sdk.models.list()
    assert page is not None
    assert c.sdk.models.count().data.count == len(page.result.data)


def models_list_for_user(c: Ctx) -> None:
    page = c.sdk.models.list_for_user(security={"bearer": c.key})
    assert page is not None and MODEL in {m.id for m in page.result.data}


def models_get(c: Ctx) -> None:
    model = c.sdk.models.get(author="test", slug="alpha").data
    assert (model.id, model.name, model.context_length) == (MODEL, "Alpha", 32768)
    assert Decimal(model.pricing.prompt) == Decimal(ALPHA_PRICES["prompt"])


def endpoints_list(c: Ctx) -> None:
    data = c.sdk.endpoints.list(author="test", slug="gamma").data
    assert data.id == "test/gamma"
    assert {ep.provider_name for ep in data.endpoints} == {"Fake A", "Fake B"}


def providers_list(c: Ctx) -> None:
    assert {p.slug for p in c.sdk.providers.list().data} >= {"fake-a", "fake-b"}


def endpoints_list_zdr(c: Ctx) -> None:
    # The test providers state no data policy, so none is zero-retention: the list is the catalog's
    # endpoints that are, and the SDK must parse it as such.
    listed = c.sdk.endpoints.list_zdr_endpoints().data
    raw = c.http("GET", "/endpoints/zdr").json()["data"]
    assert len(listed) == len(raw)


def keys_list(c: Ctx) -> None:
    listed = {k.hash: k for k in c.admin.api_keys.list().data}
    mine = listed[c.key_info["data"]["hash"]]
    assert mine.name == "conformance" and mine.limit == 3


def keys_create(c: Ctx) -> None:
    res = c.admin.api_keys.create(name="made by the SDK", limit=2.5, limit_reset="monthly")
    assert res.key.startswith("sk-or-v1-")
    assert (res.data.name, res.data.limit, res.data.limit_reset) == ("made by the SDK", 2.5, "monthly")
    with OpenRouter(api_key=res.key, server_url=c.gw.api) as fresh:  # the one-time secret works
        assert fresh.api_keys.get_current_key_metadata().data.limit == 2.5


def keys_get(c: Ctx) -> None:
    data = c.admin.api_keys.get(hash=c.key_info["data"]["hash"]).data
    assert (data.name, data.limit, data.disabled) == ("conformance", 3, False)


def keys_update(c: Ctx) -> None:
    key_hash = c.key_info["data"]["hash"]
    data = c.admin.api_keys.update(hash=key_hash, name="renamed", limit=4, disabled=True).data
    assert (data.name, data.limit, data.disabled) == ("renamed", 4, True)
    assert c.admin.api_keys.get(hash=key_hash).data.name == "renamed"


def keys_delete(c: Ctx) -> None:
    key_hash = c.key_info["data"]["hash"]
    assert c.admin.api_keys.delete(hash=key_hash).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        c.admin.api_keys.get(hash=key_hash)


def current_key(c: Ctx) -> None:
    data = c.sdk.api_keys.get_current_key_metadata().data
    assert (data.label, data.limit, data.limit_remaining, data.usage) == (c.key_info["data"]["label"], 3, 3, 0)


def auth_key(c: Ctx) -> None:
    """The legacy alias: no SDK method, so the SDK's model for `GET /key` judges it."""
    res = c.http("GET", "/auth/key")
    assert res.status_code == 200, res.text
    legacy = unmarshal_json_response(operations.GetCurrentKeyResponse, res)
    assert legacy == c.sdk.api_keys.get_current_key_metadata()


def credits_get(c: Ctx) -> None:
    c.generation()
    c.gw.flush()
    data = c.admin.credits.get_credits().data
    assert data.total_usage > 0 and data.total_credits >= data.total_usage


def credits_coinbase(c: Ctx) -> None:
    """Gone from the SDKs as from OpenRouter; the answer must still be the SDKs' `Gone` error."""
    res = c.http("POST", "/credits/coinbase", key=c.gw.management_key)
    assert res.status_code == 410
    assert unmarshal_json_response(errors.GoneResponseErrorData, res).error.code == 410


def generation_get(c: Ctx) -> None:
    gen_id = c.generation()
    data = c.sdk.generations.get_generation(id=gen_id).data
    assert (data.id, data.model, data.tokens_prompt, data.tokens_completion) == (gen_id, MODEL, 7, 3)
    assert Decimal(str(data.total_cost)) == alpha_cost(7, 3)


def generation_content(c: Ctx) -> None:
    gen_id = c.generation()
    data = c.sdk.generations.list_generation_content(id=gen_id).data
    assert data.output.completion == "for the record"
    assert data.input.messages == HELLO  # type: ignore[union-attr]


def openapi_document(c: Ctx) -> None:
    """No SDK reads the server's own document; it must describe every operation the SDKs were driven through."""
    doc = c.http("GET", "/openapi.json").json()
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert served_operations() <= described


def health_live(c: Ctx) -> None:
    """No SDK has the probes (they are Omnirouter's, for load balancers): a plain client reads them."""
    r = c.http("GET", "/health/live")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def health_ready(c: Ctx) -> None:
    r = c.http("GET", "/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text


def oauth_create_code(c: Ctx) -> None:
    res = c.admin.o_auth.create_auth_code(callback_url="https://app.example/cb", limit=1.5)
    assert res.data.id.startswith("auth_code_") and isinstance(res.data.app_id, int)


def oauth_exchange(c: Ctx) -> None:
    """The Python SDK has no PKCE helper: the verifier and challenge as RFC 7636 makes them."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = c.admin.o_auth.create_auth_code(
        callback_url="http://localhost:3000/cb", code_challenge=challenge, code_challenge_method="S256"
    ).data.id
    res = c.sdk.o_auth.exchange_auth_code_for_api_key(code=code, code_verifier=verifier, code_challenge_method="S256")
    assert res.key.startswith("sk-or-v1-") and res.user_id is None


def responses_send(c: Ctx) -> None:
    c.fake.script(Reply("responded", prompt_tokens=7, completion_tokens=3))
    res = c.sdk.responses.send(model=MODEL, input="hello conformance")
    assert res.status == "completed" and res.model == MODEL and res.id.startswith("resp_")
    (message,) = res.output
    assert message.type == "message" and [part.text for part in message.content] == ["responded"]
    assert res.usage is not None and (res.usage.input_tokens, res.usage.output_tokens) == (7, 3)
    assert Decimal(str(res.usage.cost)) == alpha_cost(7, 3)


def responses_send_stream(c: Ctx) -> None:
    c.fake.script(Stream(content="one two three", prompt_tokens=5, completion_tokens=3))
    events = list(c.sdk.responses.send(model=MODEL, input="hello conformance", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "one two three"
    assert events[-1].type == "response.completed"
    usage = events[-1].response.usage
    assert usage is not None and Decimal(str(usage.cost)) == alpha_cost(5, 3)


# Neither OpenRouter SDK has a method or a model for the Anthropic Messages API or legacy completions
# (their OpenAPI snapshots predate them), so the answers are parsed, strictly, by the models of the
# SDKs those APIs come from: Anthropic's for /messages, OpenAI's for /completions.
MESSAGE_REQUEST = {"model": MODEL, "max_tokens": 64, "messages": HELLO}


def messages_create(c: Ctx) -> None:
    c.fake.script(Reply("messaged", prompt_tokens=7, completion_tokens=3))
    res = c.http("POST", "/messages", body=MESSAGE_REQUEST)
    assert res.status_code == 200, res.text
    message = anthropic.types.Message.model_validate(res.json())
    assert [block.text for block in message.content if block.type == "text"] == ["messaged"]
    assert message.model == MODEL and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    assert Decimal(str(res.json()["usage"]["cost"])) == alpha_cost(7, 3)


def messages_create_stream(c: Ctx) -> None:
    c.fake.script(Stream(content="one two three", prompt_tokens=5, completion_tokens=3))
    parse = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent).validate_json
    found = c.events("/messages", MESSAGE_REQUEST)
    events = [parse(data) for _, data in found]
    assert [name for name, _ in found] == [e.type for e in events]
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "one two three"
    (final,) = [e for e in events if e.type == "message_delta"]
    assert final.delta.stop_reason == "end_turn" and final.usage.output_tokens == 3
    assert Decimal(str(json.loads(found[-2][1])["usage"]["cost"])) == alpha_cost(5, 3)


def messages_count_tokens(c: Ctx) -> None:
    res = c.http("POST", "/messages/count_tokens", body={"model": MODEL, "messages": HELLO})
    assert res.status_code == 200, res.text
    assert anthropic.types.MessageTokensCount.model_validate(res.json()).input_tokens > 0


def completions_create(c: Ctx) -> None:
    c.fake.script(Reply("completed", prompt_tokens=7, completion_tokens=3))
    res = c.http("POST", "/completions", body={"model": MODEL, "prompt": "hello conformance"})
    assert res.status_code == 200, res.text
    completion = openai.types.Completion.model_validate(res.json())
    assert [choice.text for choice in completion.choices] == ["completed"] and completion.model == MODEL
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        7,
        3,
    )
    assert Decimal(str(res.json()["usage"]["cost"])) == alpha_cost(7, 3)


def completions_create_stream(c: Ctx) -> None:
    """Through the OpenAI SDK's method: its `Completion` model types `finish_reason` as never null, yet
    OpenAI's own streams send null until the last chunk, so strict validation would reject OpenAI too."""
    c.fake.script(Stream(content="one two three", prompt_tokens=5, completion_tokens=3))
    with openai.OpenAI(base_url=c.gw.api, api_key=c.key, max_retries=0) as client:
        chunks = list(client.completions.create(model=MODEL, prompt="hello conformance", stream=True))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == "one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert Decimal(str((chunks[-1].usage.model_extra or {})["cost"])) == alpha_cost(5, 3)


def _preset(c: Ctx) -> str:
    """A preset of two versions, made over HTTP (each check stands alone)."""
    import uuid

    slug = "conformance-" + uuid.uuid4().hex[:8]
    for body in (
        {"model": MODEL, "temperature": 0.5},
        {"model": MODEL, "messages": [{"role": "system", "content": "Hi."}]},
    ):
        assert (
            c.http("POST", f"/presets/{slug}/chat/completions", key=c.gw.management_key, body=body).status_code == 200
        )
    return slug


def presets_list(c: Ctx) -> None:
    slug = _preset(c)
    page = c.sdk.presets.list(limit=100)
    assert page is not None and slug in {p.slug for p in page.result.data} and page.result.total_count >= 1


def presets_get(c: Ctx) -> None:
    data = c.sdk.presets.get(slug=_preset(c)).data
    assert data.designated_version is not None and data.designated_version.version == 2
    assert data.designated_version.system_prompt == "Hi." and data.designated_version_id == data.designated_version.id


def presets_list_versions(c: Ctx) -> None:
    page = c.sdk.presets.list_versions(slug=_preset(c))
    assert page is not None and [v.version for v in page.result.data] == [1, 2] and page.result.total_count == 2


def presets_get_version(c: Ctx) -> None:
    data = c.sdk.presets.get_version(slug=_preset(c), version="1").data
    assert data.version == 1 and data.config == {"model": MODEL, "temperature": 0.5} and data.system_prompt is None


def presets_create_chat(c: Ctx) -> None:
    res = c.admin.presets.create_presets_chat_completions(
        slug="conformance-chat", model=MODEL, temperature=0.2, messages=[{"role": "system", "content": "Be brief."}]
    )
    assert res.data.slug == "conformance-chat" and res.data.designated_version is not None
    assert res.data.designated_version.system_prompt == "Be brief."
    assert res.data.designated_version.config == {"model": MODEL, "temperature": 0.2}


def presets_create_messages(c: Ctx) -> None:
    res = c.admin.presets.create_presets_messages(
        slug="conformance-messages", model=MODEL, max_tokens=64, system="Be brief.", messages=HELLO
    )
    assert res.data.designated_version is not None and res.data.designated_version.system_prompt == "Be brief."
    assert res.data.designated_version.config == {"model": MODEL, "max_tokens": 64}


def presets_create_responses(c: Ctx) -> None:
    res = c.admin.presets.create_presets_responses(
        slug="conformance-responses", model=MODEL, instructions="Be brief.", input="hello conformance"
    )
    assert res.data.designated_version is not None and res.data.designated_version.system_prompt == "Be brief."
    assert res.data.designated_version.config["model"] == MODEL


# Guardrails, workspaces, BYOK keys and members: each check makes what it reads (with the management
# key, as a user would), so that it stands alone. Nothing here touches the default workspace's routing:
# guardrails are assigned only to the check's own key, BYOK keys live in a workspace of their own.


def _guardrail(c: Ctx, **fields: Any) -> Any:
    return c.admin.guardrails.create(name=unique("grd"), description="conformance", **fields).data


def guardrails_list(c: Ctx) -> None:
    made = _guardrail(c)
    page = c.admin.guardrails.list(limit=100)
    assert page is not None and page.result.total_count >= 1
    listed = {g.id: g for g in page.result.data}
    assert listed[made.id].name == made.name and listed[made.id].description == "conformance"


def guardrails_create(c: Ctx) -> None:
    name = unique("grd")
    g = c.admin.guardrails.create(
        name=name,
        description="made by the SDK",
        limit_usd=12.5,
        reset_interval="weekly",
        allowed_models=[MODEL],
        allowed_providers=["fake-a"],
        content_filters=[{"pattern": "secret-[0-9]+", "action": "redact", "label": "[S]"}],
    ).data
    assert (g.name, g.description, g.limit_usd, g.reset_interval) == (name, "made by the SDK", 12.5, "weekly")
    assert g.allowed_models == [MODEL] and g.allowed_providers == ["fake-a"]
    assert g.content_filters is not None and g.content_filters[0].pattern == "secret-[0-9]+"


def guardrails_get(c: Ctx) -> None:
    made = _guardrail(c, limit_usd=3)
    got = c.admin.guardrails.get(id=made.id).data
    assert (got.id, got.name, got.limit_usd) == (made.id, made.name, 3) and got == made


def guardrails_update(c: Ctx) -> None:
    made = _guardrail(c)
    updated = c.admin.guardrails.update(id=made.id, description="changed", allowed_providers=["fake-b"]).data
    assert (updated.id, updated.name, updated.description) == (made.id, made.name, "changed")
    assert updated.allowed_providers == ["fake-b"] and updated.updated_at is not None
    assert c.admin.guardrails.get(id=made.id).data.description == "changed"


def guardrails_delete(c: Ctx) -> None:
    made = _guardrail(c)
    assert c.admin.guardrails.delete(id=made.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        c.admin.guardrails.get(id=made.id)


def _assigned_key(c: Ctx) -> tuple[Any, str]:
    g = _guardrail(c)
    key_hash = c.key_info["data"]["hash"]
    assert c.admin.guardrails.bulk_assign_keys(id=g.id, key_hashes=[key_hash]).assigned_count == 1
    return g, key_hash


def _assigned_member(c: Ctx) -> tuple[Any, str]:
    g, user = _guardrail(c), c.member()
    assert c.admin.guardrails.bulk_assign_members(id=g.id, member_user_ids=[user]).assigned_count == 1
    return g, user


def guardrails_list_key_assignments(c: Ctx) -> None:
    g, key_hash = _assigned_key(c)
    page = c.admin.guardrails.list_key_assignments(limit=100)
    assert page is not None
    assert (g.id, key_hash) in {(a.guardrail_id, a.key_hash) for a in page.result.data}


def guardrails_list_member_assignments(c: Ctx) -> None:
    g, user = _assigned_member(c)
    page = c.admin.guardrails.list_member_assignments(limit=100)
    assert page is not None
    assert (g.id, user) in {(a.guardrail_id, a.user_id) for a in page.result.data}


def guardrails_list_guardrail_key_assignments(c: Ctx) -> None:
    g, key_hash = _assigned_key(c)
    page = c.admin.guardrails.list_guardrail_key_assignments(id=g.id)
    assert page is not None and page.result.total_count == 1
    (only,) = page.result.data
    assert (only.guardrail_id, only.key_hash) == (g.id, key_hash)


def guardrails_list_guardrail_member_assignments(c: Ctx) -> None:
    g, user = _assigned_member(c)
    page = c.admin.guardrails.list_guardrail_member_assignments(id=g.id)
    assert page is not None and page.result.total_count == 1
    (only,) = page.result.data
    assert (only.guardrail_id, only.user_id) == (g.id, user)


def guardrails_bulk_assign_keys(c: Ctx) -> None:
    """A key holds one direct guardrail: assigning it to another moves it there."""
    first, key_hash = _assigned_key(c)
    second = _guardrail(c)
    assert c.admin.guardrails.bulk_assign_keys(id=second.id, key_hashes=[key_hash]).assigned_count == 1
    for g, count in ((first, 0), (second, 1)):
        page = c.admin.guardrails.list_guardrail_key_assignments(id=g.id)
        assert page is not None and [a.key_hash for a in page.result.data] == [key_hash] * count


def guardrails_bulk_unassign_keys(c: Ctx) -> None:
    g, key_hash = _assigned_key(c)
    assert c.admin.guardrails.bulk_unassign_keys(id=g.id, key_hashes=[key_hash]).unassigned_count == 1
    page = c.admin.guardrails.list_guardrail_key_assignments(id=g.id)
    assert page is not None and page.result.data == []


def guardrails_bulk_assign_members(c: Ctx) -> None:
    g, user = _assigned_member(c)
    page = c.admin.guardrails.list_guardrail_member_assignments(id=g.id)
    assert page is not None and [(a.guardrail_id, a.user_id) for a in page.result.data] == [(g.id, user)]


def guardrails_bulk_unassign_members(c: Ctx) -> None:
    g, user = _assigned_member(c)
    assert c.admin.guardrails.bulk_unassign_members(id=g.id, member_user_ids=[user]).unassigned_count == 1
    page = c.admin.guardrails.list_guardrail_member_assignments(id=g.id)
    assert page is not None and page.result.data == []


def _workspace(c: Ctx, **fields: Any) -> Any:
    slug = unique("ws")
    return c.admin.workspaces.create(name=fields.pop("name", slug), slug=slug, **fields).data


def workspaces_list(c: Ctx) -> None:
    made = _workspace(c)
    page = c.admin.workspaces.list(limit=100)
    assert page is not None
    ids = [w.id for w in page.result.data]
    assert ids[0] == DEFAULT_WORKSPACE_ID and page.result.data[0].slug == "default"
    assert made.id in ids and page.result.total_count == len(ids)


def workspaces_create(c: Ctx) -> None:
    slug = unique("ws")
    w = c.admin.workspaces.create(
        name="Made by the SDK", slug=slug, description="conformance", default_text_model=MODEL,
        default_provider_sort="price",
    ).data  # fmt: skip
    assert (w.name, w.slug, w.description) == ("Made by the SDK", slug, "conformance")
    assert w.default_text_model == MODEL and w.default_provider_sort == "price" and w.updated_at is None


def workspaces_get(c: Ctx) -> None:
    made = _workspace(c, description="to read")
    assert c.admin.workspaces.get(id=made.id).data == made
    assert c.admin.workspaces.get(id=made.slug).data == made  # by slug too


def workspaces_update(c: Ctx) -> None:
    made = _workspace(c, default_text_model=MODEL)
    updated = c.admin.workspaces.update(id=made.slug, name="Renamed", default_text_model=None).data
    assert (updated.id, updated.name, updated.default_text_model) == (made.id, "Renamed", None)
    assert updated.updated_at is not None and c.admin.workspaces.get(id=made.id).data.name == "Renamed"


def workspaces_delete(c: Ctx) -> None:
    made = _workspace(c)
    assert c.admin.workspaces.delete(id=made.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        c.admin.workspaces.get(id=made.id)


def _with_members(c: Ctx) -> tuple[Any, str, str]:
    w, admin_id, plain_id = _workspace(c), c.member("admin"), c.member()
    added = c.admin.workspaces.bulk_add_members(id=w.id, user_ids=[admin_id, plain_id])
    assert added.added_count == 2
    assert {(m.user_id, m.role, m.workspace_id) for m in added.data} == {
        (admin_id, "admin", w.id),
        (plain_id, "member", w.id),
    }
    return w, admin_id, plain_id


def workspaces_list_members(c: Ctx) -> None:
    w, admin_id, plain_id = _with_members(c)
    page = c.admin.workspaces.list_members(id=w.slug)
    assert page is not None and page.result.total_count == 2
    assert {m.user_id for m in page.result.data} == {admin_id, plain_id}


def workspaces_bulk_add_members(c: Ctx) -> None:
    w, admin_id, _ = _with_members(c)
    assert c.admin.workspaces.bulk_add_members(id=w.id, user_ids=[admin_id]).added_count == 0  # already in


def workspaces_bulk_remove_members(c: Ctx) -> None:
    w, admin_id, plain_id = _with_members(c)
    assert c.admin.workspaces.bulk_remove_members(id=w.id, user_ids=[plain_id]).removed_count == 1
    page = c.admin.workspaces.list_members(id=w.id)
    assert page is not None and [m.user_id for m in page.result.data] == [admin_id]


def _budgeted(c: Ctx) -> Any:
    w = _workspace(c)
    for interval, limit in (("lifetime", 1000), ("monthly", 500), ("daily", 10.5)):
        budget = c.admin.workspaces.set_budget(workspace_ref=w.id, interval=interval, limit_usd=limit).data
        assert budget.workspace_id == w.id and budget.limit_usd == limit
    return w


def workspaces_list_budgets(c: Ctx) -> None:
    listed = c.admin.workspaces.list_budgets(workspace_ref=_budgeted(c).slug)
    assert [(b.reset_interval, b.limit_usd) for b in listed.data] == [(None, 1000), ("monthly", 500), ("daily", 10.5)]
    assert listed.include_byok_in_budgets is False


def workspaces_get_budget(c: Ctx) -> None:
    w = _budgeted(c)
    got = c.admin.workspaces.get_budget(workspace_ref=w.id, interval="monthly")
    assert (got.data.workspace_id, got.data.reset_interval, got.data.limit_usd) == (w.id, "monthly", 500)


def workspaces_set_budget(c: Ctx) -> None:
    w = _workspace(c)
    first = c.admin.workspaces.set_budget(workspace_ref=w.slug, interval="weekly", limit_usd=100)
    assert (first.data.workspace_id, first.data.reset_interval, first.data.limit_usd) == (w.id, "weekly", 100)
    again = c.admin.workspaces.set_budget(
        workspace_ref=w.id, interval="weekly", limit_usd=80, include_byok_in_budgets=True
    )
    assert (again.data.id, again.data.created_at, again.data.limit_usd) == (first.data.id, first.data.created_at, 80)
    assert again.include_byok_in_budgets is True


def workspaces_delete_budget(c: Ctx) -> None:
    w = _budgeted(c)
    assert c.admin.workspaces.delete_budget(workspace_ref=w.id, interval="daily").DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        c.admin.workspaces.get_budget(workspace_ref=w.id, interval="daily")


def organization_list_members(c: Ctx) -> None:
    admin_id, plain_id = c.member("admin"), c.member()
    page = c.admin.organization.list_members(limit=100)
    assert page is not None
    by_id = {m.id: m for m in page.result.data}
    assert (by_id[admin_id].role, by_id[plain_id].role) == ("org:admin", "org:member")
    assert (by_id[plain_id].first_name, by_id[plain_id].last_name) == ("Jane", "Doe")
    assert by_id[plain_id].email.endswith("@example.com")


BYOK_SECRET = "sk-conformance-secret-1234"


def _byok(c: Ctx, **fields: Any) -> Any:
    """A BYOK key in a workspace of its own, so that the other checks' requests still use the shared keys."""
    return c.admin.byok.create(provider="fake-b", key=BYOK_SECRET, workspace_id=_workspace(c).id, **fields).data


def byok_list(c: Ctx) -> None:
    made = _byok(c, name="listed")
    page = c.admin.byok.list(workspace_id=made.workspace_id)
    assert page is not None and page.result.total_count == 1
    (only,) = page.result.data
    assert (only.id, only.name, only.provider, only.label) == (made.id, "listed", "fake-b", made.label)


def byok_create(c: Ctx) -> None:
    made = _byok(c, name="made by the SDK", is_fallback=True, allowed_models=["test/beta"])
    assert (made.name, made.provider, made.is_fallback, made.disabled) == ("made by the SDK", "fake-b", True, False)
    assert made.label == "sk-..." + BYOK_SECRET[-4:] and made.allowed_models == ["test/beta"]


def byok_get(c: Ctx) -> None:
    made = _byok(c, name="to read")
    got = c.admin.byok.get(id=made.id).data
    assert (got.id, got.name, got.label) == (made.id, "to read", made.label) and got == made


def byok_update(c: Ctx) -> None:
    made = _byok(c, name="to change")
    updated = c.admin.byok.update(id=made.id, disabled=True, name="changed", key="sk-another-secret-9876").data
    assert (updated.id, updated.name, updated.disabled, updated.label) == (made.id, "changed", True, "sk-...9876")
    assert c.admin.byok.get(id=made.id).data.disabled is True


def byok_delete(c: Ctx) -> None:
    made = _byok(c)
    assert c.admin.byok.delete(id=made.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        c.admin.byok.get(id=made.id)


PYTHON: dict[str, Callable[[Ctx], None]] = {
    "chat.send": chat_send,
    "chat.send(stream)": chat_send_stream,
    "models.list": models_list,
    "models.count": models_count,
    "models.listForUser": models_list_for_user,
    "models.get": models_get,
    "endpoints.list": endpoints_list,
    "providers.list": providers_list,
    "endpoints.listZdrEndpoints": endpoints_list_zdr,
    "apiKeys.list": keys_list,
    "apiKeys.create": keys_create,
    "apiKeys.get": keys_get,
    "apiKeys.update": keys_update,
    "apiKeys.delete": keys_delete,
    "apiKeys.getCurrentKeyMetadata": current_key,
    "GET /auth/key": auth_key,
    "credits.getCredits": credits_get,
    "POST /credits/coinbase": credits_coinbase,
    "generations.getGeneration": generation_get,
    "generations.listGenerationContent": generation_content,
    "GET /openapi.json": openapi_document,
    "responses.send": responses_send,
    "responses.send(stream)": responses_send_stream,
    "POST /messages": messages_create,
    "POST /messages(stream)": messages_create_stream,
    "POST /messages/count_tokens": messages_count_tokens,
    "POST /completions": completions_create,
    "POST /completions(stream)": completions_create_stream,
    "GET /health/live": health_live,
    "GET /health/ready": health_ready,
    "presets.list": presets_list,
    "presets.get": presets_get,
    "presets.listVersions": presets_list_versions,
    "presets.getVersion": presets_get_version,
    "presets.createPresetsChatCompletions": presets_create_chat,
    "presets.createPresetsMessages": presets_create_messages,
    "presets.createPresetsResponses": presets_create_responses,
    "oAuth.createAuthCode": oauth_create_code,
    "oAuth.exchangeAuthCodeForAPIKey": oauth_exchange,
    "guardrails.list": guardrails_list,
    "guardrails.create": guardrails_create,
    "guardrails.get": guardrails_get,
    "guardrails.update": guardrails_update,
    "guardrails.delete": guardrails_delete,
    "guardrails.listKeyAssignments": guardrails_list_key_assignments,
    "guardrails.listMemberAssignments": guardrails_list_member_assignments,
    "guardrails.listGuardrailKeyAssignments": guardrails_list_guardrail_key_assignments,
    "guardrails.listGuardrailMemberAssignments": guardrails_list_guardrail_member_assignments,
    "guardrails.bulkAssignKeys": guardrails_bulk_assign_keys,
    "guardrails.bulkUnassignKeys": guardrails_bulk_unassign_keys,
    "guardrails.bulkAssignMembers": guardrails_bulk_assign_members,
    "guardrails.bulkUnassignMembers": guardrails_bulk_unassign_members,
    "workspaces.list": workspaces_list,
    "workspaces.create": workspaces_create,
    "workspaces.get": workspaces_get,
    "workspaces.update": workspaces_update,
    "workspaces.delete": workspaces_delete,
    "workspaces.listMembers": workspaces_list_members,
    "workspaces.bulkAddMembers": workspaces_bulk_add_members,
    "workspaces.bulkRemoveMembers": workspaces_bulk_remove_members,
    "workspaces.listBudgets": workspaces_list_budgets,
    "workspaces.getBudget": workspaces_get_budget,
    "workspaces.setBudget": workspaces_set_budget,
    "workspaces.deleteBudget": workspaces_delete_budget,
    "organization.listMembers": organization_list_members,
    "byok.list": byok_list,
    "byok.create": byok_create,
    "byok.get": byok_get,
    "byok.update": byok_update,
    "byok.delete": byok_delete,
}


def test_every_served_operation_is_covered() -> None:
    assert served_operations() == set(ROUTES) | set(MODALITY_ROUTES), (
        "add the new route to ROUTES, PYTHON and tests/sdk_ts/conformance.mjs (or, beyond chat, to MODALITY_ROUTES)"
    )
    assert set(PYTHON) == set(OPERATIONS)
    script = (TS_DIR / "conformance.mjs").read_text()
    assert [op for op in OPERATIONS if json.dumps(op) not in script] == []

    driven = {op for name in MODALITY_TESTS for op in importlib.import_module(f"tests.test_{name}").CONFORMANCE}
    beyond_chat = {op for ops in MODALITY_ROUTES.values() for op in ops}
    assert beyond_chat <= driven, "each test module's CONFORMANCE drives its operations through the Python SDK"
    scripts = "".join(path.read_text() for path in TS_DIR.glob("*.mjs"))
    assert sorted(op for op in beyond_chat - OPENAI_SDK_ONLY if f'"{op}"' not in scripts) == []


def test_every_plugin_and_server_tool_goes_through_both_sdks() -> None:
    from omnirouter.plugins import REGISTRY, registry  # noqa: F401  (registry fills REGISTRY)
    from omnirouter.servertools import _modules as server_tools

    assert set(PLUGIN_TESTS) == {plugin_id for plugin_id, _ in REGISTRY} | set(server_tools()) | {
        "pareto-router", "response-cache"
    }, "a new plugin or server tool joins PLUGIN_TESTS, driven through both SDKs"  # fmt: skip
    tests = Path(__file__).parent
    for name, (module, script) in PLUGIN_TESTS.items():
        source = (tests / f"test_{module}.py").read_text()
        assert "from openrouter import" in source and f'"{script}"' in source, (name, module)
        assert name.removeprefix("openrouter:").split("-")[0] in (TS_DIR / script).read_text(), (name, script)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_python_sdk(operation: str, ctx: Ctx) -> None:
    PYTHON[operation](ctx)


def test_python_sdk_errors_are_its_typed_errors(ctx: Ctx) -> None:
    """Error answers too must parse: a body the SDK cannot read would surface as a validation error."""
    with pytest.raises(errors.BadRequestResponseError, match="not a valid model ID"):
        ctx.sdk.chat.send(model="test/typo", messages=HELLO)
    with pytest.raises(errors.BadRequestResponseError, match="not a valid model ID"):
        ctx.sdk.responses.send(model="test/typo", input="hello conformance")
    with pytest.raises(errors.NotFoundResponseError):
        ctx.sdk.generations.get_generation(id="gen-1-00000000000000000000")
    with pytest.raises(errors.NotFoundResponseError):
        ctx.sdk.models.get(author="test", slug="typo")
    with pytest.raises(errors.ForbiddenResponseError):
        ctx.sdk.credits.get_credits()
    stranger = OpenRouter(api_key="sk-or-v1-" + "0" * 64, server_url=ctx.gw.api)
    with stranger, pytest.raises(errors.UnauthorizedResponseError):
        stranger.api_keys.get_current_key_metadata()


# -- the TypeScript SDK: one node process runs every operation and prints one JSON line for each


@pytest.fixture(scope="module")
def ts_results(gw: Gateway, fake_a: Any) -> dict[str, dict[str, Any]]:
    require_node()
    fake_a.fake.reset()  # unscripted, the fake echoes the prompt
    key = gw.create_key(name="ts conformance", limit=3)
    config = {
        "serverURL": gw.api,
        "apiKey": key["key"],
        "keyHash": key["data"]["hash"],
        "keyLabel": key["data"]["label"],
        "managementKey": gw.management_key,
        "model": MODEL,
        "memberIds": [add_member(gw, "admin"), add_member(gw)],
    }
    proc = subprocess.run(
        ["node", str(TS_DIR / "conformance.mjs")],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TS_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {r["operation"]: r for r in results}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_typescript_sdk(operation: str, ts_results: dict[str, dict[str, Any]]) -> None:
    result = ts_results.get(operation)
    assert result is not None, f"conformance.mjs did not run {operation}"
    assert result["ok"], result.get("error")


def test_typescript_sdk_errors_are_its_typed_errors(ts_results: dict[str, dict[str, Any]]) -> None:
    result = ts_results["errors"]
    assert result["ok"], result.get("error")
