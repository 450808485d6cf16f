"""Observability destinations (/observability/destinations): CRUD through HTTP and both SDKs, and the
delivery of every generation to real receivers on loopback, one per type, checked against each
wire format (signature, OTLP protobuf, Langfuse/LangSmith/Datadog payloads and auth, S3 SigV4), with
privacy, allow-lists, sampling, filter rules, retries, a dead destination and a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from omnirouter.governance.byok_crypto import keyring_of
from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.observability.destinations import Row, get
from omnirouter.observability.filters import sampled
from omnirouter.testing.fakes.s3 import FakeS3, FakeS3Thread
from tests.gateway import FreshDatabase, Gateway
from tests.observability_receivers import Blackhole, Receiver
from tests.sdk_ts_run import run_steps

FAST = {
    "sandbox": True,
    "log_prompts": True,
    "observability_poll_interval": 0.05,
    "observability_retry_initial": 0.05,
    "observability_retry_max": 0.2,
    "observability_timeout": 1.0,
}
PATH = "/observability/destinations"
# What the document cannot say (tests/test_schemathesis.py): the types delivered here, each type's
# config fields, that a workspace exists, that a regex compiles, that credentials need an encryption key.
_REFUSED = ("type ", "config", "workspace_id: no workspace", "filter_rules: regex", "OMNIROUTER_ENCRYPTION_KEY",
            "at most 5 destinations")  # fmt: skip
SEMANTIC_REFUSALS = {
    (PATH, "post"): lambda error: (
        error["message"].startswith(_REFUSED) or "OMNIROUTER_ENCRYPTION_KEY" in error["message"]
    ),
    (PATH + "/{id}", "patch"): lambda error: (
        error["message"].startswith(_REFUSED) or "OMNIROUTER_ENCRYPTION_KEY" in error["message"]
    ),
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("destinations"), encryption_key=new_encryption_key(), **FAST).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def admin(gw: Gateway) -> Iterator[httpx.Client]:
    with gw.admin() as c:
        yield c


@pytest.fixture
def key(admin: httpx.Client, gw: Gateway) -> dict[str, Any]:
    """A key of the test's own in a workspace of its own, and its hash: each test's destinations are
    that workspace's and allow only that key, so that tests sharing the gateway see only their own
    generations (and each has the room of 5 destinations a type)."""
    slug = "obs-" + os.urandom(4).hex()
    workspace = admin.post("/workspaces", json={"name": slug, "slug": slug}).json()["data"]["id"]
    made = gw.create_key(name="destinations", workspace_id=workspace)
    return {"key": made["key"], "hash": made["data"]["hash"], "workspace": workspace}


def chat(gw: Gateway, key: str, text: str = "hello destinations", **fields: Any) -> str:
    with gw.client(key) as c:
        r = c.post("/chat/completions", json={"model": "sandbox/chat", "messages": [{"role": "user", "content": text}],
                                              **fields})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["id"]


def create(admin: httpx.Client, kind: str, config: dict[str, Any], key: dict[str, Any] | None, **fields: Any) -> dict:
    body = {"type": kind, "name": f"{kind} test", "config": config, **fields}
    if key is not None:
        body.setdefault("api_key_hashes", [key["hash"]])
        body.setdefault("workspace_id", key["workspace"])
    r = admin.post(PATH, json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def delivery(admin: httpx.Client, dest_id: str) -> dict[str, Any]:
    r = admin.get(f"{PATH}/{dest_id}")
    assert r.status_code == 200, r.text
    return r.json()["data"]["delivery"]


def until(admin: httpx.Client, dest_id: str, done: Any, timeout: float = 20) -> dict[str, Any]:
    """The destination's delivery counts once `done(them)` holds: the deliverer writes them after the
    receiver has answered, so a test that saw the events waits for the counts too."""
    deadline = time.monotonic() + timeout
    while not done(state := delivery(admin, dest_id)):
        assert time.monotonic() < deadline, state
        time.sleep(0.02)
    return state


def json_bodies(received: list, prefix: str) -> list[Any]:
    return [json.loads(r.body) for r in received if r.path.startswith(prefix)]


# -- each type, on the wire -------------------------------------------------------------------------


def test_webhook_is_signed_and_carries_the_generation(gw: Gateway, admin: httpx.Client, receiver: Receiver,
                                                      key: dict) -> None:  # fmt: skip
    dest = create(admin, "webhook", {"url": receiver.url + "/hook1", "secret": "whsec_test_secret_0123456789",
                                     "headers": {"X-Team": "obs"}}, key)  # fmt: skip
    assert dest["config"]["secret"] != "whsec_test_secret_0123456789"  # masked
    ids = {chat(gw, key["key"], "first"), chat(gw, key["key"], "second")}

    def events(received: list) -> list[dict]:
        found = [e for b in json_bodies(received, "/hook1") for e in b["data"]]
        return found if {e["id"] for e in found} >= ids else []

    got = receiver.wait(events)
    for r in (r for r in receiver.requests if r.path == "/hook1"):
        t, v1 = (part.split("=", 1)[1] for part in r.headers["x-omnirouter-signature"].split(","))
        want = hmac.new(b"whsec_test_secret_0123456789", f"{t}.".encode() + r.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(v1, want)
        assert r.headers["x-team"] == "obs" and r.headers["content-type"] == "application/json"
    first = next(e for e in got if e["id"] in ids)
    assert first["model"] == "sandbox/chat" and first["usage"]["total_tokens"] > 0
    assert "cost" not in first and "identity" not in first  # broadcast_* are off by default
    assert first["input"][0]["role"] == "user"  # log_prompts is on and privacy_mode off
    state = until(admin, dest["id"], lambda d: d["delivered"] >= 2)
    assert state["pending"] == 0 and state["failed"] == 0


def test_a_generated_webhook_secret_is_shown_once(admin: httpx.Client, receiver: Receiver) -> None:
    made = create(admin, "webhook", {"url": receiver.url + "/hook-gen"}, None, enabled=False)
    secret = made["config"]["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    again = admin.get(f"{PATH}/{made['id']}").json()["data"]
    assert again["config"]["secret"] != secret and secret not in json.dumps(again)
    assert again["config"]["url"] == receiver.url + "/hook-gen" and again["config"]["method"] == "POST"


def test_otel_collector_gets_genai_spans(gw: Gateway, admin: httpx.Client, receiver: Receiver, key: dict) -> None:
    create(admin, "otel-collector", {"endpoint": receiver.url + "/otel", "headers": {"Authorization": "Bearer t0k"}},
           key, broadcast_generation_cost=True)  # fmt: skip
    gen_id = chat(gw, key["key"], "trace me", session_id="sess-otel")

    def spans(received: list) -> list:
        out = []
        for r in received:
            if r.path == "/otel/v1/traces":
                assert r.headers["content-type"] == "application/x-protobuf"
                assert r.headers["authorization"] == "Bearer t0k"
                req = ExportTraceServiceRequest.FromString(r.body)
                out += [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
        return [s for s in out if any(a.key == "gen_ai.response.id" and a.value.string_value == gen_id
                                      for a in s.attributes)]  # fmt: skip

    (span,) = receiver.wait(spans)
    attrs = {a.key: a.value for a in span.attributes}
    assert span.name == "chat sandbox/chat" and span.kind == span.SPAN_KIND_CLIENT
    assert attrs["gen_ai.operation.name"].string_value == "chat"
    assert attrs["gen_ai.request.model"].string_value == "sandbox/chat"
    assert attrs["gen_ai.provider.name"].string_value == "sandbox"
    assert attrs["gen_ai.usage.input_tokens"].int_value > 0 and attrs["gen_ai.usage.output_tokens"].int_value > 0
    assert attrs["gen_ai.conversation.id"].string_value == "sess-otel"
    assert "trace me" in attrs["gen_ai.input.messages"].string_value
    assert attrs["omnirouter.cost.total"].string_value  # broadcast_generation_cost
    assert len(span.trace_id) == 16 and len(span.span_id) == 8 and span.end_time_unix_nano >= span.start_time_unix_nano


def test_langfuse_ingestion_batch(gw: Gateway, admin: httpx.Client, receiver: Receiver, key: dict) -> None:
    create(admin, "langfuse", {"baseUrl": receiver.url + "/lf", "publicKey": "pk-lf-public-123456",
                               "secretKey": "sk-lf-secret-abcdef"}, key, broadcast_generation_cost=True)  # fmt: skip
    gen_id = chat(gw, key["key"], "langfuse me")

    def generation(received: list) -> dict | None:
        for r in received:
            if r.path == "/lf/api/public/ingestion":
                assert (
                    r.headers["authorization"]
                    == "Basic " + base64.b64encode(b"pk-lf-public-123456:sk-lf-secret-abcdef").decode()
                )
                for ev in json.loads(r.body)["batch"]:
                    assert {"id", "timestamp", "type", "body"} <= set(ev)
                    if ev["type"] == "generation-create" and ev["body"]["id"] == gen_id:
                        return ev["body"]
        return None

    body = receiver.wait(generation)
    assert body["traceId"] == gen_id and body["model"] == "sandbox/chat"
    assert body["usageDetails"]["input"] > 0 and body["usageDetails"]["total"] >= body["usageDetails"]["output"]
    assert "costDetails" in body and body["input"][0]["content"] == "langfuse me"
    traces = [e for b in json_bodies(receiver.requests, "/lf") for e in b["batch"] if e["type"] == "trace-create"]
    assert any(t["body"]["id"] == gen_id for t in traces)


def test_langsmith_runs_batch(gw: Gateway, admin: httpx.Client, receiver: Receiver, key: dict) -> None:
    create(admin, "langsmith", {"endpoint": receiver.url + "/ls", "apiKey": "lsv2_pt_secret_0123456789",
                                "project": "omni-proj", "workspaceId": "ws-1"}, key)  # fmt: skip
    gen_id = chat(gw, key["key"], "langsmith me")

    def run(received: list) -> dict | None:
        for r in received:
            if r.path == "/ls/runs/batch":
                assert r.headers["x-api-key"] == "lsv2_pt_secret_0123456789" and r.headers["x-tenant-id"] == "ws-1"
                for posted in json.loads(r.body)["post"]:
                    if posted["extra"]["metadata"]["id"] == gen_id:
                        return posted
        return None

    posted = receiver.wait(run)
    assert posted["run_type"] == "llm" and posted["session_name"] == "omni-proj"
    assert posted["trace_id"] == posted["id"] and posted["dotted_order"].endswith(posted["id"])
    assert posted["inputs"]["messages"][0]["content"] == "langsmith me" and posted["outputs"]["output"]
    assert posted["extra"]["metadata"]["usage_metadata"]["input_tokens"] > 0


def test_datadog_llm_observability_spans(gw: Gateway, admin: httpx.Client, receiver: Receiver, key: dict) -> None:
    create(admin, "datadog", {"url": receiver.url + "/dd", "apiKey": "dd-api-key-0123456789abcdef",
                              "mlApp": "omni-app"}, key)  # fmt: skip
    gen_id = chat(gw, key["key"], "datadog me")

    def span(received: list) -> dict | None:
        for r in received:
            if r.path == "/dd/api/intake/llm-obs/v1/trace/spans":
                assert r.headers["dd-api-key"] == "dd-api-key-0123456789abcdef"
                data = json.loads(r.body)["data"]
                assert data["type"] == "span" and data["attributes"]["ml_app"] == "omni-app"
                for s in data["attributes"]["spans"]:
                    if s["meta"]["metadata"]["id"] == gen_id:
                        return s
        return None

    s = receiver.wait(span)
    assert s["meta"]["kind"] == "llm" and s["meta"]["model_name"] == "sandbox/chat" and s["parent_id"] == "undefined"
    assert s["meta"]["input"]["messages"] == [{"role": "user", "content": "datadog me"}]
    assert s["metrics"]["input_tokens"] > 0 and s["status"] == "ok" and s["start_ns"] > 0
    assert "total_cost" not in s["metrics"]


@pytest.fixture(scope="module")
def s3() -> Iterator[FakeS3Thread]:
    handle = FakeS3.run_in_thread(bucket="traces")
    yield handle
    handle.close()


def test_s3_objects_signed_with_sigv4(gw: Gateway, admin: httpx.Client, s3: FakeS3Thread, key: dict) -> None:
    fake = s3.fake
    create(admin, "s3", {"endpoint": s3.base_url, "bucketName": "traces", "accessKeyId": fake.access_key,
                         "secretAccessKey": fake.secret_key, "region": fake.region, "prefix": "omni"}, key)  # fmt: skip
    gen_id = chat(gw, key["key"], "store me")
    deadline = time.monotonic() + 20  # the fake S3 has no condition to wait on: poll its objects
    while not [k for k in list(fake.objects) if gen_id in k] and time.monotonic() < deadline:
        time.sleep(0.02)
    (object_key,) = [k for k in fake.objects if gen_id in k]
    assert object_key.startswith("omni/") and object_key.endswith(".json")
    doc = json.loads(fake.objects[object_key])
    assert doc["id"] == gen_id and doc["input"][0]["content"] == "store me"
    assert all(r.status == 200 for r in fake.requests if gen_id in r.path)


# -- what is sent, and to whom ---------------------------------------------------------------------


def test_privacy_mode_sends_no_content(gw: Gateway, admin: httpx.Client, receiver: Receiver, key: dict) -> None:
    create(admin, "webhook", {"url": receiver.url + "/private"}, key, privacy_mode=True,
           broadcast_generation_identity=True, broadcast_generation_cost=True)  # fmt: skip
    gen_id = chat(gw, key["key"], "a secret prompt")
    (event,) = receiver.wait(
        lambda rs: [e for b in json_bodies(rs, "/private") for e in b["data"] if e["id"] == gen_id]
    )
    assert "input" not in event and "output" not in event and "a secret prompt" not in json.dumps(event)
    assert event["identity"]["api_key_hash"] == key["hash"] and event["cost"]["total_cost"] is not None


def test_allow_list_sampling_and_filter_rules(gw: Gateway, admin: httpx.Client, receiver: Receiver,
                                              key: dict) -> None:  # fmt: skip
    other = gw.create_key(name="someone else", workspace_id=key["workspace"])["data"]["hash"]
    control = create(admin, "webhook", {"url": receiver.url + "/control"}, key)
    half = create(admin, "webhook", {"url": receiver.url + "/half"}, key, sampling_rate=0.5)
    elsewhere = create(admin, "webhook", {"url": receiver.url + "/elsewhere"}, key, api_key_hashes=[other])
    rules = {"groups": [{"logic": "and", "rules": [{"field": "input", "operator": "contains", "value": "keep"}]}]}
    filtered = create(admin, "webhook", {"url": receiver.url + "/filtered"}, key, filter_rules=rules)
    ids = [chat(gw, key["key"], f"message {i} {'keep' if i % 3 == 0 else 'drop'}") for i in range(12)]
    receiver.wait(lambda rs: {e["id"] for b in json_bodies(rs, "/control") for e in b["data"]} >= set(ids))
    # Each destination's events were written with the generations, in one transaction: the control
    # has them all, so the others have whatever they will ever get queued or delivered.
    want_half = {i for i in ids if sampled(0.5, half["id"], i)}
    assert 0 < len(want_half) < len(ids)
    receiver.wait(lambda rs: {e["id"] for b in json_bodies(rs, "/half") for e in b["data"]} >= want_half)
    want_kept = {ids[i] for i in range(0, 12, 3)}
    receiver.wait(lambda rs: {e["id"] for b in json_bodies(rs, "/filtered") for e in b["data"]} >= want_kept)
    assert until(admin, half["id"], lambda d: d["pending"] == 0)["delivered"] == len(want_half)
    assert until(admin, filtered["id"], lambda d: d["pending"] == 0)["delivered"] == len(want_kept)
    assert delivery(admin, elsewhere["id"]) == {"delivered": 0, "failed": 0, "pending": 0, "last_error": None,
                                                "last_delivered_at": None}  # fmt: skip
    assert until(admin, control["id"], lambda d: d["pending"] == 0)["delivered"] == len(ids)


def test_a_failed_delivery_is_retried(gw: Gateway, admin: httpx.Client, receiver: Receiver, key: dict) -> None:
    receiver.fail_next(503, 500)
    dest = create(admin, "webhook", {"url": receiver.url + "/flaky"}, key)
    gen_id = chat(gw, key["key"])
    receiver.wait(lambda rs: [e for b in json_bodies(rs, "/flaky") for e in b["data"] if e["id"] == gen_id])
    state = until(admin, dest["id"], lambda d: d["delivered"] == 1)
    assert state["failed"] == 2 and state["last_error"] == "HTTP 500"


def test_a_dead_destination_never_slows_requests_nor_loses_events(gw: Gateway, admin: httpx.Client,
                                                                   receiver: Receiver, key: dict) -> None:  # fmt: skip
    hole = Blackhole()
    try:
        dead = create(admin, "langfuse", {"baseUrl": hole.url, "publicKey": "pk-dead-0123456789",
                                          "secretKey": "sk-dead-0123456789"}, key)  # fmt: skip
        live = create(admin, "webhook", {"url": receiver.url + "/beside-dead"}, key)
        first = chat(gw, key["key"])
        assert hole.connected.wait(10)  # a send to it hangs from now on
        with gw.client(key["key"]) as c:  # requests meanwhile answer as usual
            for _ in range(5):
                r = c.post(
                    "/chat/completions", json={"model": "sandbox/chat", "messages": [{"role": "user", "content": "x"}]}
                )
                assert r.status_code == 200  # (bench/destinations.py measures that they are not slower)
        receiver.wait(lambda rs: [e for b in json_bodies(rs, "/beside-dead") for e in b["data"] if e["id"] == first])
        # The send times out (observability_timeout: 1 s); the events stay, to be retried.
        state = until(admin, dead["id"], lambda d: d["failed"] >= 1)
        assert state["failed"] >= 1 and state["delivered"] == 0 and state["pending"] >= 1
        assert state["last_error"].startswith("timed out")
        until(admin, live["id"], lambda d: d["delivered"] >= 6)
    finally:
        hole.close()
        admin.patch(f"{PATH}/{dead['id']}", json={"enabled": False})


def test_a_send_cut_off_by_a_stop_is_sent_again_at_once_after_it(tmp_path: Path, receiver: Receiver) -> None:
    """Its lease is given back at the stop, not left to expire (observability_timeout + 60 s)."""
    database = FreshDatabase()
    settings = {**FAST, "encryption_key": new_encryption_key(), "database_url": database.url,
                "observability_timeout": 30.0}  # fmt: skip
    hole = Blackhole()
    first = Gateway(tmp_path, **settings).start()
    try:
        with first.admin() as a:
            dest = create(a, "webhook", {"url": hole.url + "/hangs"}, None)
            gen_id = chat(first, first.create_key(name="cut off")["key"])
            assert hole.connected.wait(10)  # the send is in flight; the next one goes to the receiver
            r = a.patch(f"{PATH}/{dest['id']}", json={"config": {"url": receiver.url + "/cut-off"}})
            assert r.status_code == 200, r.text
    finally:
        first.stop()
        hole.close()
    second = Gateway(tmp_path, **settings).start()
    try:
        receiver.wait(lambda rs: [e for b in json_bodies(rs, "/cut-off") for e in b["data"] if e["id"] == gen_id])
    finally:
        second.stop()
        database.drop()


def test_events_undelivered_past_the_retention_are_dropped(tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail_next(*[503] * 1000)
    settings = {**FAST, "encryption_key": new_encryption_key(), "observability_retention_hours": 0.5 / 3600}
    gw = Gateway(tmp_path, **settings).start()
    try:
        with gw.admin() as a:
            dest = create(a, "webhook", {"url": receiver.url + "/never"}, None)
            chat(gw, gw.create_key(name="retention")["key"])
            state = until(a, dest["id"], lambda d: d["failed"] >= 1 and d["pending"] == 0)
        assert state["delivered"] == 0
    finally:
        gw.stop()
        receiver.fail_next()


def test_undelivered_events_are_delivered_after_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    database = FreshDatabase()  # one database for both gateways (SQLite: the same data dir)
    encryption = new_encryption_key()
    settings = {**FAST, "encryption_key": encryption, "database_url": database.url}
    receiver.fail_next(*[503] * 1000)  # down until the first gateway has stopped
    first = Gateway(tmp_path, **settings).start()
    try:
        with first.admin() as a:
            dest = create(a, "webhook", {"url": receiver.url + "/restart"}, None)
            key = first.create_key(name="restart")["key"]
            gen_ids = {chat(first, key, "before the restart") for _ in range(3)}
            until(a, dest["id"], lambda d: d["failed"] >= 3)
    finally:
        first.stop()
    receiver.fail_next()
    second = Gateway(tmp_path, **settings).start()
    try:
        receiver.wait(lambda rs: {e["id"] for b in json_bodies(rs, "/restart") for e in b["data"]} >= gen_ids)
        with second.admin() as a:
            state = until(a, dest["id"], lambda d: d["delivered"] == 3)
        assert state["failed"] >= 3 and state["pending"] == 0
    finally:
        second.stop()
        database.drop()


# -- the API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "nope", "name": "x", "config": {}}, 400, "nope"),
        ({"type": "sentry", "name": "x", "config": {"dsn": "https://x"}}, 400, "not supported here"),
        ({"type": "langfuse", "name": "x", "config": {"publicKey": "pk"}}, 400, "config.secretKey is required"),
        ({"type": "webhook", "name": "x", "config": {"url": "ftp://x"}}, 400, "http:// or https://"),
        ({"type": "webhook", "name": "x", "config": {"url": "http://x", "typo": 1}}, 400, "unknown field"),
        ({"type": "webhook", "name": "x", "config": {"url": "http://x", "method": "GET"}}, 400, "POST or PUT"),
        ({"type": "webhook", "name": "x", "config": {"url": "http://x"}, "sampling_rate": 0}, 400, "sampling_rate"),
        ({"type": "webhook", "name": "x", "config": {"url": "http://x"}, "api_key_hashes": []}, 400, "api_key_hashes"),
        ({"type": "webhook", "name": "", "config": {"url": "http://x"}}, 400, "name"),
        ({"type": "webhook", "name": "x", "config": {"url": "http://x"}, "workspace_id": "missing"}, 400, "workspace"),
        ({"type": "webhook", "name": "x", "config": {"url": "http://x"}, "filter_rules": {
            "groups": [{"rules": [{"field": "model", "operator": "regex", "value": "("}]}]}}, 400, "regex"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_and_writes_nothing(admin: httpx.Client, body: dict, status: int, message: str) -> None:
    before = admin.get(PATH, params={"limit": 100}).json()["total_count"]
    r = admin.post(PATH, json=body)
    assert r.status_code == status and message in r.json()["error"]["message"], r.text
    assert admin.get(PATH, params={"limit": 100}).json()["total_count"] == before


def test_crud_pages_masks_and_limits(gw: Gateway, admin: httpx.Client, receiver: Receiver) -> None:
    ws = admin.post("/workspaces", json={"name": "Obs", "slug": "obs-crud"}).json()["data"]["id"]
    made = [create(admin, "langsmith", {"apiKey": f"lsv2_secret_value_{i:04d}", "endpoint": receiver.url + "/crud"},
                   None, workspace_id=ws, enabled=False) for i in range(5)]  # fmt: skip
    assert all(m["workspace_id"] == ws and m["config"]["apiKey"].startswith("lsv") and "secret_value" not in
               m["config"]["apiKey"] for m in made)  # fmt: skip
    r = admin.post(PATH, json={"type": "langsmith", "name": "6th", "config": {"apiKey": "k" * 20}, "workspace_id": ws})
    assert r.status_code == 409
    page = admin.get(PATH, params={"workspace_id": ws, "limit": 2, "offset": 1}).json()
    assert page["total_count"] == 5 and [d["id"] for d in page["data"]] == [m["id"] for m in made[1:3]]
    assert admin.get(PATH, params={"limit": 101}).status_code == 400
    # PATCH: a masked value sent back keeps the secret; others change; unset fields stay.
    target = made[0]
    r = admin.patch(f"{PATH}/{target['id']}", json={"name": "renamed", "sampling_rate": 0.25,
                                                    "config": {**target["config"], "project": "p2"}})  # fmt: skip
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["name"] == "renamed" and data["sampling_rate"] == 0.25 and data["config"]["project"] == "p2"
    assert data["config"]["apiKey"] == target["config"]["apiKey"] and data["enabled"] is False
    row, _ = asyncio.run_coroutine_threadsafe(get(gw.state.db, target["id"]), gw.loop).result()
    assert isinstance(row, Row) and "lsv2_secret_value_0000" not in json.dumps(row.config) + row.secrets
    assert row.full_config(keyring_of(gw.settings))["apiKey"] == "lsv2_secret_value_0000"
    assert admin.patch(f"{PATH}/{target['id']}", json={"config": {"bogus": 1}}).status_code == 400
    # DELETE: gone for every operation, and its slot is free again.
    assert admin.delete(f"{PATH}/{target['id']}").json() == {"deleted": True}
    for method in ("GET", "PATCH", "DELETE"):
        assert admin.request(method, f"{PATH}/{target['id']}", json={}).status_code == 404
    assert admin.get(f"{PATH}/not-a-uuid").status_code == 404
    create(admin, "langsmith", {"apiKey": "k" * 20}, None, workspace_id=ws, enabled=False)


def test_a_deleted_workspace_takes_its_destinations_and_their_events(admin: httpx.Client, receiver: Receiver) -> None:
    slug = "obs-gone-" + os.urandom(4).hex()
    workspace = admin.post("/workspaces", json={"name": slug, "slug": slug}).json()["data"]["id"]
    dest = create(admin, "webhook", {"url": receiver.url + "/gone"}, None, workspace_id=workspace)
    assert admin.delete(f"/workspaces/{workspace}").status_code == 200
    assert admin.get(f"{PATH}/{dest['id']}").status_code == 404
    assert dest["id"] not in {d["id"] for d in admin.get(PATH, params={"limit": 100}).json()["data"]}


def test_inference_keys_are_refused(gw: Gateway, key: dict) -> None:
    with gw.client(key["key"]) as c:
        assert c.get(PATH).status_code == 403
        assert c.post(PATH, json={"type": "webhook", "name": "x", "config": {"url": "http://x"}}).status_code == 403


def test_without_an_encryption_key_writes_are_refused(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path, sandbox=True).start()
    try:
        with gateway.admin() as a:
            r = a.post(PATH, json={"type": "webhook", "name": "x", "config": {"url": "http://127.0.0.1:9/x"}})
            assert r.status_code == 400 and "OMNIROUTER_ENCRYPTION_KEY" in r.json()["error"]["message"]
            assert a.get(PATH).json() == {"data": [], "total_count": 0}
    finally:
        gateway.stop()


# -- the SDKs --------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, gw: Gateway, admin: httpx.Client, url: str) -> None:
        self.sdk = OpenRouter(api_key=gw.management_key, server_url=gw.api)
        self.url = url
        slug = "sdk-" + os.urandom(4).hex()  # a workspace of its own: room for 5 webhooks
        self.workspace = admin.post("/workspaces", json={"name": slug, "slug": slug}).json()["data"]["id"]

    def made(self) -> Any:
        return self.sdk.observability.create(
            type_="webhook", name="sdk hook", config={"url": self.url}, enabled=False, workspace_id=self.workspace
        )


def observability_list(c: _Ctx) -> None:
    made = c.made()
    res = c.sdk.observability.list(limit=100, workspace_id=c.workspace)
    assert res.result.total_count == 1 and [d.id for d in res.result.data] == [made.data.id]
    assert res.result.data[0].regions == ["global"] and res.result.data[0].broadcast_generation_cost_allocation is False


def observability_create(c: _Ctx) -> None:
    res = c.made()
    assert res.data.type == "webhook" and res.data.config.url == c.url and res.data.enabled is False


def observability_get(c: _Ctx) -> None:
    made = c.made()
    assert c.sdk.observability.get(id=made.data.id).data.name == "sdk hook"
    with pytest.raises(errors.NotFoundResponseError):
        c.sdk.observability.get(id="99999999-aaaa-bbbb-cccc-dddddddddddd")


def observability_update(c: _Ctx) -> None:
    made = c.made()
    res = c.sdk.observability.update(id=made.data.id, name="renamed by sdk", sampling_rate=0.5)
    assert res.data.name == "renamed by sdk" and res.data.sampling_rate == 0.5


def observability_delete(c: _Ctx) -> None:
    made = c.made()
    assert c.sdk.observability.delete(id=made.data.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        c.sdk.observability.get(id=made.data.id)


CONFORMANCE = {
    "observability.list": observability_list,
    "observability.create": observability_create,
    "observability.get": observability_get,
    "observability.update": observability_update,
    "observability.delete": observability_delete,
}


@pytest.mark.parametrize("operation", CONFORMANCE)
def test_openrouter_sdk(operation: str, gw: Gateway, admin: httpx.Client, receiver: Receiver) -> None:
    ctx = _Ctx(gw, admin, receiver.url + "/sdk")
    with ctx.sdk:
        CONFORMANCE[operation](ctx)


def test_typescript_sdk(gw: Gateway, admin: httpx.Client, receiver: Receiver) -> None:
    slug = "sdk-ts-" + os.urandom(4).hex()
    workspace = admin.post("/workspaces", json={"name": slug, "slug": slug}).json()["data"]["id"]
    results = run_steps("observability.mjs", {"serverURL": gw.api, "apiKey": gw.management_key,
                                              "url": receiver.url + "/sdk-ts", "workspaceId": workspace})  # fmt: skip
    assert set(results) >= set(CONFORMANCE) and all(r["ok"] for r in results.values()), results
