"""FakeGemini answers as the Gemini API does: Google's own SDK (google-genai) reads it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from omnirouter.testing import FakeGemini, FakeGeminiThread, Reply, Status, Stream
from omnirouter.testing.fakes.gemini import blocked_prompt, error_body

KEY = "fake-gemini-key"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGeminiThread]:
    with FakeGemini.run_in_thread(api_key=KEY) as handle:
        yield handle


@pytest.fixture
def client(fake: FakeGeminiThread) -> genai.Client:
    fake.reset()
    root = fake.base_url.removesuffix("/v1beta")
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=root, api_version="v1beta"))


def test_text_with_thoughts_and_usage(client: genai.Client, fake: FakeGeminiThread) -> None:
    fake.script(Reply("Paris.", reasoning="The capital.", prompt_tokens=40, completion_tokens=9, cached_tokens=30))
    answer = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="Capital of France?",
        config=types.GenerateContentConfig(
            system_instruction="Be brief.", thinking_config=types.ThinkingConfig(include_thoughts=True)
        ),
    )
    parts = answer.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert [(p.text, bool(p.thought)) for p in parts] == [("The capital.", True), ("Paris.", False)]  # type: ignore[union-attr]
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    usage = answer.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.cached_content_token_count) == (40, 30)
    # Gemini counts thoughts apart from the candidates' tokens.
    assert (usage.candidates_token_count, usage.thoughts_token_count, usage.total_token_count) == (7, 2, 49)
    sent = fake.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.json["systemInstruction"]["parts"] == [{"text": "Be brief."}]


def test_function_calls_are_whole_and_the_first_is_signed(client: genai.Client, fake: FakeGeminiThread) -> None:
    fake.script(Reply("", tool_calls=[{"name": "weather", "arguments": {"city": "Paris"}},
                                      {"name": "weather", "arguments": {"city": "Rome"}}]))  # fmt: skip
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="weather",
                parameters=types.Schema(
                    type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
                ),
            )
        ]
    )
    answer = client.models.generate_content(
        model="gemini-2.5-pro", contents="Weather?", config=types.GenerateContentConfig(tools=[tool])
    )
    calls = answer.function_calls or []
    assert [(c.name, c.args) for c in calls] == [("weather", {"city": "Paris"}), ("weather", {"city": "Rome"})]
    parts = answer.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert parts[0].thought_signature and not parts[1].thought_signature  # type: ignore[index]


def test_stream(client: genai.Client, fake: FakeGeminiThread) -> None:
    fake.script(Stream(content="one two three", prompt_tokens=5, completion_tokens=3))
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="count"))
    assert "".join(c.text or "" for c in chunks) == "one two three"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert chunks[-1].usage_metadata.candidates_token_count == 3  # type: ignore[union-attr]
    assert fake.requests[-1].query == {"alt": "sse"}


def test_blocked_prompt(client: genai.Client, fake: FakeGeminiThread) -> None:
    fake.script(blocked_prompt("SAFETY"))
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="something bad")
    assert answer.candidates is None
    assert answer.prompt_feedback.block_reason == types.BlockedReason.SAFETY  # type: ignore[union-attr]


def test_errors_in_googles_envelope(client: genai.Client, fake: FakeGeminiThread) -> None:
    fake.script(Status(429, error_body(429, retry_delay=12)))
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (exc.value.code, exc.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert exc.value.details["error"]["details"][0]["retryDelay"] == "12s"

    root = fake.base_url.removesuffix("/v1beta")
    wrong = genai.Client(api_key="nope", http_options=types.HttpOptions(base_url=root, api_version="v1beta"))
    with pytest.raises(errors.ClientError) as exc:
        wrong.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (exc.value.code, exc.value.status) == (400, "INVALID_ARGUMENT")
    assert exc.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_what_gemini_refuses_is_refused(fake: FakeGeminiThread) -> None:
    fake.reset()
    url = fake.base_url + "/models/gemini-2.5-flash:generateContent"
    headers = {"x-goog-api-key": KEY}
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    assert httpx.post(url, json={"contents": contents}, headers=headers).status_code == 200
    assert httpx.post(url, json={"contents": contents}).status_code == 403
    r = httpx.post(url, json={"contents": contents, "temperature": 1}, headers=headers)
    assert r.status_code == 400 and 'Unknown name "temperature"' in r.json()["error"]["message"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    tools = [{"functionDeclarations": [{"name": "f", "parameters": schema}]}]
    r = httpx.post(url, json={"contents": contents, "tools": tools}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = httpx.post(url.replace(":generateContent", ":streamGenerateContent"), json={"contents": contents},
                   headers=headers)  # fmt: skip
    assert r.status_code == 400  # only alt=sse streams here
