"""Uploaded files named by id in chat, responses and messages requests: the upstream receives their
content (a data URL, or the Anthropic base64/text source), translated or passed through; only the
owning key may name them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from omnirouter.testing import FakeAnthropic, FakeAnthropicThread, FakeOpenAIResponses, FakeOpenAIResponsesThread, Reply
from tests import files_samples as fs
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import Gateway

ANTHROPIC_KEY = "sk-ant-files-test"


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropicThread]:
    handle = FakeAnthropic.run_in_thread(api_key=ANTHROPIC_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def oai() -> Iterator[FakeOpenAIResponsesThread]:
    handle = FakeOpenAIResponses.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, claude: FakeAnthropicThread,
       oai: FakeOpenAIResponsesThread) -> Iterator[Gateway]:  # fmt: skip
    config = standard_config(fake_a.base_url, fake_b.base_url)
    config["providers"] += [
        {"slug": "claude", "name": "Claude", "api": "anthropic", "base_url": claude.base_url, "api_key": ANTHROPIC_KEY},
        {"slug": "oai", "name": "OpenAI Responses", "api": "openai-responses", "base_url": oai.base_url},
    ]
    config["models"] += [
        {"id": "test/claude", "name": "Claude", "context_length": 200000,
         "endpoints": [{"provider": "claude", "upstream_model": "claude-up", "pricing": ALPHA_PRICES}]},
        {"id": "test/oai", "name": "OAI", "context_length": 200000,
         "endpoints": [{"provider": "oai", "upstream_model": "oai-up", "pricing": ALPHA_PRICES}]},
    ]  # fmt: skip
    gateway = Gateway(tmp_path_factory.mktemp("files-inference"), config).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> str:
    return str(gw.create_key(name="files inference")["key"])


def upload(gw: Gateway, key: str, content: bytes, name: str) -> str:
    res = httpx.post(gw.api + "/files", headers={"Authorization": f"Bearer {key}"}, files={"file": (name, content)})
    assert res.status_code == 200, res.text
    return str(res.json()["id"])


def data_url(mime: str, content: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def parts_of(recorded: Any) -> list[dict[str, Any]]:
    return [p for m in recorded.json["messages"] if isinstance(m["content"], list) for p in m["content"]]


def test_a_chat_file_part_reaches_the_upstream_with_its_content(gw: Gateway, key: str, fake_a: Any) -> None:
    file_id = upload(gw, key, fs.PDF, "paper.pdf")
    fake_a.fake.script(Reply("read it"))
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    answer = client.chat.completions.create(
        model="test/alpha",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Summarise"}, {"type": "file", "file": {"file_id": file_id}},
        ]}],
    )  # fmt: skip
    assert answer.choices[0].message.content == "read it"
    sent = parts_of(fake_a.fake.requests[-1])
    assert sent[1] == {
        "type": "file",
        "file": {"file_data": data_url("application/pdf", fs.PDF), "filename": "paper.pdf"},
    }
    assert file_id not in fake_a.fake.requests[-1].body.decode()


def test_a_streamed_chat_with_a_file_part_too(gw: Gateway, key: str, fake_a: Any) -> None:
    file_id = upload(gw, key, b"alpha,beta\n1,2\n", "t.csv")
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    chunks = list(client.chat.completions.create(
        model="test/alpha", stream=True,
        messages=[{"role": "user", "content": [
            {"type": "file", "file": {"file_id": file_id, "filename": "mine.csv"}}]}],
    ))  # fmt: skip
    assert chunks
    sent = parts_of(fake_a.fake.requests[-1])[0]["file"]
    assert sent == {"file_data": data_url("text/csv", b"alpha,beta\n1,2\n"), "filename": "mine.csv"}


def test_responses_input_file_and_input_image(
    gw: Gateway, key: str, fake_a: Any, oai: FakeOpenAIResponsesThread
) -> None:
    pdf, image = upload(gw, key, fs.PDF, "a.pdf"), upload(gw, key, fs.png(), "i.png")
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    content = [
        {"type": "input_text", "text": "Look"},
        {"type": "input_file", "file_id": pdf},
        {"type": "input_image", "file_id": image, "detail": "auto"},
    ]
    client.responses.create(model="test/alpha", input=[{"role": "user", "content": content}])  # translated to chat
    sent = parts_of(fake_a.fake.requests[-1])
    assert sent[1] == {"type": "file", "file": {"file_data": data_url("application/pdf", fs.PDF), "filename": "a.pdf"}}
    assert sent[2]["image_url"]["url"] == data_url("image/png", fs.png())
    client.responses.create(model="test/oai", input=[{"role": "user", "content": content}])  # passed through
    native = oai.requests[-1].json["input"][0]["content"]
    assert native[1] == {"type": "input_file", "file_data": data_url("application/pdf", fs.PDF), "filename": "a.pdf"}
    assert native[2] == {"type": "input_image", "image_url": data_url("image/png", fs.png()), "detail": "auto"}


def test_messages_file_sources(gw: Gateway, key: str, fake_a: Any, claude: FakeAnthropicThread) -> None:
    pdf, notes, image = (
        upload(gw, key, fs.PDF, "a.pdf"),
        upload(gw, key, b"plain notes", "n.txt"),
        upload(gw, key, fs.png(), "i.png"),
    )
    client = anthropic.Anthropic(api_key=key, base_url=gw.url + "/api", max_retries=0)
    content = [
        {"type": "document", "source": {"type": "file", "file_id": pdf}, "title": "Paper"},
        {"type": "document", "source": {"type": "file", "file_id": notes}},
        {"type": "image", "source": {"type": "file", "file_id": image}},
        {"type": "text", "text": "What is in these?"},
    ]
    client.messages.create(model="test/claude", max_tokens=50, messages=[{"role": "user", "content": content}])
    native = claude.requests[-1].json["messages"][0]["content"]  # passed through, content inlined
    assert native[0]["source"] == {"type": "base64", "media_type": "application/pdf",
                                   "data": base64.b64encode(fs.PDF).decode()}  # fmt: skip
    assert native[1]["source"] == {"type": "text", "media_type": "text/plain", "data": "plain notes"}
    assert native[2]["source"]["data"] == base64.b64encode(fs.png()).decode()
    client.messages.create(model="test/alpha", max_tokens=50, messages=[{"role": "user", "content": content}])
    sent = parts_of(fake_a.fake.requests[-1])  # translated to chat parts
    assert {"type": "file", "file": {"filename": "Paper", "file_data": data_url("application/pdf", fs.PDF)}} in sent
    assert {"type": "text", "text": "plain notes"} in sent


def test_another_keys_or_a_deleted_file_is_not_found(gw: Gateway, key: str, fake_a: Any) -> None:
    theirs = upload(gw, gw.create_key(name="someone else")["key"], fs.PDF, "theirs.pdf")
    client = openai.OpenAI(api_key=key, base_url=gw.api, max_retries=0)
    before = len(fake_a.fake.requests)
    part = {"type": "file", "file": {"file_id": theirs}}
    with pytest.raises(openai.NotFoundError, match=f"File {theirs} not found"):
        client.chat.completions.create(model="test/alpha", messages=[{"role": "user", "content": [part]}])
    mine = upload(gw, key, fs.PDF, "mine.pdf")
    httpx.delete(f"{gw.api}/files/{mine}", headers={"Authorization": f"Bearer {key}"}).raise_for_status()
    with pytest.raises(openai.NotFoundError, match=mine):
        client.responses.create(model="test/alpha", input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": mine}]}])  # fmt: skip
    with pytest.raises(anthropic.NotFoundError):
        anthropic.Anthropic(api_key=key, base_url=gw.url + "/api", max_retries=0).messages.create(
            model="test/alpha", max_tokens=5,
            messages=[{"role": "user", "content": [{"type": "document", "source": {"type": "file", "file_id": mine}}]}],
        )  # fmt: skip
    assert len(fake_a.fake.requests) == before  # nothing went upstream


def test_a_file_of_the_wrong_kind_for_the_block_is_refused(gw: Gateway, key: str) -> None:
    audio = upload(gw, key, fs.wav(), "tone.wav")
    client = openai.OpenAI(api_key=key, base_url=gw.api, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="not an image"):
        client.responses.create(model="test/alpha", input=[{"role": "user", "content": [
            {"type": "input_image", "file_id": audio}]}])  # fmt: skip
    with pytest.raises(anthropic.BadRequestError, match="a PDF or a text file"):
        anthropic.Anthropic(api_key=key, base_url=gw.url + "/api", max_retries=0).messages.create(
            model="test/alpha", max_tokens=5,
            messages=[{"role": "user", "content": [
                {"type": "document", "source": {"type": "file", "file_id": audio}}]}],
        )  # fmt: skip


def test_other_file_ids_and_the_word_itself_are_left_alone(gw: Gateway, key: str, fake_a: Any) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    client.chat.completions.create(model="test/alpha", messages=[{"role": "user", "content": "what is a file_id?"}])
    assert fake_a.fake.requests[-1].json["messages"][0]["content"] == "what is a file_id?"
    part = {"type": "file", "file": {"file_id": "file-provider-side-123"}}
    client.chat.completions.create(model="test/alpha", messages=[{"role": "user", "content": [part]}])
    assert parts_of(fake_a.fake.requests[-1]) == [part]  # not ours: for the upstream to know


def test_what_is_reserved_counts_the_files_content(gw: Gateway, fake_a: Any) -> None:
    """A key that cannot afford a large file's prompt is refused before anything goes upstream, as it
    would be had it sent the content inline; a small file fits."""
    key = gw.create_key(name="small budget", limit=0.005)["key"]
    client = openai.OpenAI(api_key=key, base_url=gw.api, max_retries=0)
    big, small = upload(gw, key, b"word " * 6000, "big.txt"), upload(gw, key, b"word " * 10, "small.txt")
    before = len(fake_a.fake.requests)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="test/alpha", max_tokens=10, messages=[{"role": "user", "content": [
            {"type": "file", "file": {"file_id": big}}]}])  # fmt: skip
    assert err.value.status_code == 402 and len(fake_a.fake.requests) == before
    client.chat.completions.create(model="test/alpha", max_tokens=10, messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_id": small}}]}])  # fmt: skip
    assert len(fake_a.fake.requests) == before + 1
