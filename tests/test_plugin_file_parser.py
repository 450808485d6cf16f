"""The file-parser plugin: PDFs (made here with fpdf2) read locally (pdf-text) or by a Mistral-OCR-style
API on loopback (mistral-ocr), in the chat, responses and messages formats through the real SDKs; the
`file` annotation that spares a second parse; native file models; fees exact in /generation and /key."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from decimal import Decimal

import anthropic
import openai
import pytest
from fpdf import FPDF
from openrouter import OpenRouter

from omnirouter.testing import Reply, Stream
from omnirouter.testing.fakes.ocr import FakeMistralOCR
from omnirouter.testing.fakes.pages import FakePages
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import generation, key_usage
from tests.sdk_ts_run import run_steps

OCR_PRICE = Decimal("0.002")
OCR_KEY_ENV = "OMNIROUTER_TEST_OCR_KEY"
PAGE_TEXTS = ["Quarterly report: revenue grew 12 percent.", "Costs fell by 3 percent.", "Outlook: steady."]


def make_pdf(*pages: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


PDF = make_pdf(*PAGE_TEXTS)
DATA_URL = "data:application/pdf;base64," + base64.b64encode(PDF).decode()
HASH = hashlib.sha256(DATA_URL.encode()).hexdigest()


def _model_cost(prompt: int, completion: int) -> Decimal:
    return prompt * Decimal(ALPHA_PRICES["prompt"]) + completion * Decimal(ALPHA_PRICES["completion"])


@pytest.fixture(scope="module")
def ocr():
    with FakeMistralOCR.run_in_thread(api_key="ocr-secret") as fake:
        yield fake


@pytest.fixture(scope="module")
def pages():
    with FakePages.run_in_thread() as p:
        p.page("/report.pdf", PDF, "application/pdf")
        p.page("/report", PDF, "application/octet-stream")  # a PDF without the name or type saying so
        yield p


@pytest.fixture
def gw(make_gateway, fake_a, fake_b):
    config = standard_config(fake_a.base_url, fake_b.base_url)
    # test/reader reads files itself (native support); test/alpha does not.
    reader = copy.deepcopy(next(m for m in config["models"] if m["id"] == "test/alpha"))
    reader.update(id="test/reader", name="Reader", architecture={"input_modalities": ["text", "image", "file"]})
    config["models"].append(reader)
    return make_gateway(config, web_fetch_allow_private=True)


@pytest.fixture
def ocr_gw(make_gateway, ocr, monkeypatch):
    monkeypatch.setenv(OCR_KEY_ENV, "ocr-secret")
    base = ocr.base_url.removesuffix("/v1")
    return make_gateway(
        file_parser_ocr={"base_url": base, "api_key_env": OCR_KEY_ENV, "price_per_page": str(OCR_PRICE)}
    )


def _file_text(fake) -> str:
    """The text part the upstream got in place of the PDF."""
    [message] = [m for m in fake.fake.last_request.json["messages"] if m["role"] == "user"]
    content = message["content"]
    assert isinstance(content, list)
    assert all(p["type"] == "text" for p in content), content  # no file part left
    [text] = [p["text"] for p in content if p["text"].startswith("File: ")]
    return text


def _chat(file_data: str = DATA_URL, engine: str | None = "pdf-text", model: str = "test/alpha") -> dict:
    plugin: dict = {"id": "file-parser"}
    if engine is not None:
        plugin["pdf"] = {"engine": engine}
    return {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarize the report."},
                    {"type": "file", "file": {"filename": "report.pdf", "file_data": file_data}},
                ],
            }
        ],
        "plugins": [plugin],
    }


def _sdk(body: dict) -> dict:
    """The openai SDK's arguments for a chat body: what it does not know goes in extra_body."""
    return {**{k: v for k, v in body.items() if k != "plugins"}, "extra_body": {"plugins": body["plugins"]}}


def test_chat_pdf_text_openai_sdk(gw, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("Revenue grew.", prompt_tokens=40, completion_tokens=3))
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    raw = client.chat.completions.with_raw_response.create(**_sdk(_chat()))
    text = _file_text(fake_a)
    assert text.startswith("File: report.pdf\n\n")
    for line in PAGE_TEXTS:
        assert line in text
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    [annotation] = body["choices"][0]["message"]["annotations"]
    assert annotation["type"] == "file"
    assert (annotation["file"]["hash"], annotation["file"]["name"]) == (HASH, "report.pdf")
    [content] = annotation["file"]["content"]
    assert content["type"] == "text" and PAGE_TEXTS[1] in content["text"]
    row = generation(gw, key, body["id"])
    assert row["total_cost"] == _model_cost(40, 3)  # pdf-text is free


def test_streamed_answer_carries_the_annotation(gw, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Stream("Revenue grew.", prompt_tokens=40, completion_tokens=3))
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    chunks = list(client.chat.completions.create(**_sdk(_chat()), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Revenue grew."
    annotations = [a for c in chunks for ch in c.choices for a in (getattr(ch.delta, "annotations", None) or ())]
    assert [(a["type"], a["file"]["hash"]) for a in annotations] == [("file", HASH)]
    assert PAGE_TEXTS[0] in annotations[0]["file"]["content"][0]["text"]
    assert generation(gw, key, chunks[0].id)["total_cost"] == _model_cost(40, 3)


def test_default_engine_is_local_without_ocr_configured(gw, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("ok"))
    with gw.client(key) as c:
        r = c.post("/chat/completions", json=_chat(engine=None))
    assert r.status_code == 200, r.text
    assert PAGE_TEXTS[0] in _file_text(fake_a)
    assert "# Page" not in _file_text(fake_a)


def test_native_file_models_get_the_file(gw, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("ok"), Reply("ok"))
    with gw.client(key) as c:
        for engine in (None, "native"):
            r = c.post("/chat/completions", json=_chat(engine=engine, model="test/reader"))
            assert r.status_code == 200, r.text
            sent = fake_a.fake.last_request.json["messages"][0]["content"]
            assert sent[1] == {"type": "file", "file": {"filename": "report.pdf", "file_data": DATA_URL}}
            assert not r.json()["choices"][0]["message"].get("annotations")
        # An engine named explicitly parses even for a model that reads files.
        fake_a.fake.script(Reply("ok"))
        r = c.post("/chat/completions", json=_chat(engine="pdf-text", model="test/reader"))
    assert r.status_code == 200, r.text
    assert PAGE_TEXTS[2] in _file_text(fake_a)


def test_pdf_by_url_under_the_fetch_rules(gw, make_gateway, pages, fake_a):
    key = gw.create_key()["key"]
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    for path in ("/report.pdf", "/report"):
        fake_a.fake.script(Reply("ok"))
        client.chat.completions.create(**_sdk(_chat(file_data=pages.url(path))))
        assert PAGE_TEXTS[0] in _file_text(fake_a)
    # With the default settings, a loopback URL (here by a name that resolves to it) is refused.
    strict = make_gateway()
    before = len(pages.requests)
    with strict.client(strict.create_key()["key"]) as c:
        r = c.post("/chat/completions", json=_chat(file_data=f"http://localhost:{pages.port}/report.pdf"))
    assert r.status_code == 400
    assert "resolves to a loopback address" in r.json()["error"]["message"]
    assert len(pages.requests) == before


def test_mistral_ocr_fee_and_no_second_parse(ocr_gw, ocr, fake_a):
    key = ocr_gw.create_key()["key"]
    fake_a.fake.script(Reply("Revenue grew.", prompt_tokens=30, completion_tokens=3))
    before = len(ocr.requests)
    with ocr_gw.client(key) as c:
        r = c.post("/chat/completions", json=_chat(engine="mistral-ocr"))
    assert r.status_code == 200, r.text
    text = _file_text(fake_a)
    assert "# Page 1" in text and "# Page 3" in text and PAGE_TEXTS[1] in text
    sent = ocr.requests[before].json
    assert sent["model"] == "mistral-ocr-latest"
    assert sent["document"]["document_url"] == DATA_URL
    first = r.json()
    row = generation(ocr_gw, key, first["id"])
    assert row["total_cost"] == _model_cost(30, 3) + 3 * OCR_PRICE

    # The conversation goes on with the annotation sent back: the file is not parsed (nor paid) again.
    fake_a.fake.script(Reply("Costs fell.", prompt_tokens=50, completion_tokens=3))
    body = _chat(engine=None)
    answer = first["choices"][0]["message"]
    body["messages"] += [
        {"role": "assistant", "content": answer["content"], "annotations": answer["annotations"]},
        {"role": "user", "content": [{"type": "text", "text": "And costs?"}, body["messages"][0]["content"][1]]},
    ]
    with ocr_gw.client(key) as c:
        r = c.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert len(ocr.requests) == before + 1
    user_turns = [m for m in fake_a.fake.last_request.json["messages"] if m["role"] == "user"]
    assert all("# Page 2" in m["content"][1]["text"] for m in user_turns)
    row = generation(ocr_gw, key, r.json()["id"])
    assert row["total_cost"] == _model_cost(50, 3)
    assert key_usage(ocr_gw, key) == _model_cost(30, 3) + 3 * OCR_PRICE + _model_cost(50, 3)


def test_responses_input_file_openai_sdk(gw, pages, fake_a):
    key = gw.create_key()["key"]
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    for part in (
        {"type": "input_file", "filename": "report.pdf", "file_data": DATA_URL},
        {"type": "input_file", "file_url": pages.url("/report.pdf")},
    ):
        fake_a.fake.script(Reply("Revenue grew.", prompt_tokens=20, completion_tokens=3))
        raw = client.responses.with_raw_response.create(
            model="test/alpha",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Summarize."}, part]}],
            extra_body={"plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]},
        )
        assert raw.parse().output_text == "Revenue grew."
        assert PAGE_TEXTS[0] in _file_text(fake_a)
        row = generation(gw, key, raw.headers["x-generation-id"])
        assert row["total_cost"] == _model_cost(20, 3)


def test_messages_document_anthropic_sdk(ocr_gw, ocr, fake_a):
    key = ocr_gw.create_key()["key"]
    client = anthropic.Anthropic(base_url=ocr_gw.url + "/api", api_key=key)
    fake_a.fake.script(Reply("Revenue grew.", prompt_tokens=25, completion_tokens=3))
    message = client.messages.create(
        model="test/alpha",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "report.pdf",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": DATA_URL.split(",")[1]},
                    },
                    {"type": "text", "text": "Summarize."},
                ],
            }
        ],
        extra_body={"plugins": [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]},
    )
    assert message.content[0].text == "Revenue grew."
    assert "# Page 3" in _file_text(fake_a)
    row = generation(ocr_gw, key, message.id)
    assert row["total_cost"] == _model_cost(25, 3) + 3 * OCR_PRICE


def test_openrouter_sdk(gw, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("Revenue grew.", prompt_tokens=10, completion_tokens=3))
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        result = client.chat.send(
            model="test/alpha",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Summarize."},
                        {"type": "file", "file": {"filename": "report.pdf", "file_data": DATA_URL}},
                    ],
                }
            ],
            plugins=[{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}],
        )
    assert result.choices[0].message.content == "Revenue grew."
    assert PAGE_TEXTS[2] in _file_text(fake_a)


@pytest.mark.parametrize(
    ("body_change", "words"),
    [
        ({"plugins": [{"id": "file-parser", "pdf": {"engine": "tesseract"}}]}, "pdf.engine must be one of"),
        ({"file_data": "data:application/pdf;base64,%%%"}, "invalid base64"),
        (
            {"file_data": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 broken").decode()},
            "not a readable PDF",
        ),
    ],
)
def test_bad_input_is_400(gw, body_change, words):
    body = _chat(file_data=body_change.get("file_data", DATA_URL))
    if "plugins" in body_change:
        body["plugins"] = body_change["plugins"]
    with gw.client(gw.create_key()["key"]) as c:
        r = c.post("/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"]


def test_typescript_sdk(gw, pages, fake_a):
    """tests/sdk_ts/fetch_files.mjs: web-fetch (streamed and not) and file-parser through @openrouter/sdk."""
    pages.page(
        "/hello.html", "<html><body><article><p>" + "Gateways route requests. " * 20 + "</p></article></body></html>"
    )
    key = gw.create_key()["key"]
    config = {"serverURL": gw.api, "apiKey": key, "model": "test/alpha", "pageUrl": pages.url("/hello.html"),
              "pdfDataUrl": DATA_URL}  # fmt: skip
    results = run_steps("fetch_files.mjs", config)
    assert set(results) == {"web-fetch.chat.send", "web-fetch.chat.send(stream)", "file-parser.chat.send"}
    assert all(r["ok"] for r in results.values()), results
    sent = [r.json["messages"] for r in fake_a.fake.requests]
    assert [m[0]["role"] for m in sent] == ["system", "system", "user"]
    assert all("Gateways route requests." in m[0]["content"] for m in sent[:2])
    assert PAGE_TEXTS[0] in sent[2][0]["content"][1]["text"]


async def test_fetched_pdf_page_is_its_text(pages):
    """What the web fetcher (web-fetch, openrouter:web_fetch) makes of a PDF: its text, by pypdf."""
    from omnirouter.settings import Settings
    from omnirouter.web.fetch import fetch_page

    page = await fetch_page(Settings(web_fetch_allow_private=True), pages.url("/report"))
    assert page.content_type == "application/octet-stream"
    assert page.text == "\n\n".join(PAGE_TEXTS)
