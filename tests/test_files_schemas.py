"""The Files API's answers are files/schemas.py's Structs: the bytes the server sends in each shape, what
a client decoding them with the public unions gets back, and what the served document (and OpenRouter's)
says of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import msgspec
import pytest

from omnirouter.files import service, shapes
from omnirouter.files.records import FileRecord
from omnirouter.files.schemas import FileDeleted, FileList, FileObject, Purpose
from omnirouter.jsonio import encode
from tests.spec_validation import spec_available, validate
from tests.test_openapi import conforms

SHAPES = ("openrouter", "openai", "anthropic")
COMPONENT = {"openrouter": "OpenRouter", "openai": "OpenAI", "anthropic": "Anthropic"}


def record(n: int, purpose: str = "user_data") -> FileRecord:
    created = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return FileRecord(id=f"or_file_{n}", key_hash="h", workspace_id=None, filename=f"doc{n}.pdf",
                      mime_type="application/pdf", size_bytes=1000 + n, sha256="0" * 64, purpose=purpose,
                      store="local", created_at=created)  # fmt: skip


def answers(shape: shapes.Shape) -> list[tuple[str, str, Any, Any, str]]:
    """(path, method, answer, the union a client decodes it with, OpenRouter's component name)."""
    name = COMPONENT[shape]
    return [
        ("/files/{file_id}", "get", shapes.file_object(record(1, "vision"), shape), FileObject, f"{name}File"),
        ("/files", "post", shapes.file_object(record(1), shape), FileObject, f"{name}File"),
        ("/files", "get", shapes.list_object([record(1), record(2)], True, shape), FileList, f"{name}FileList"),
        ("/files", "get", shapes.list_object([], False, shape), FileList, f"{name}FileList"),
        ("/files/{file_id}", "delete", shapes.deleted_object("or_file_9", shape), FileDeleted, f"{name}FileDeleted"),
    ]


def test_the_wire_bytes_of_each_shape() -> None:
    """Keys in this order, these values: what the SDKs of each shape were checked against."""
    assert encode(shapes.file_object(record(1), "openrouter")) == (
        b'{"_shape":"openrouter","id":"or_file_1","type":"file","filename":"doc1.pdf","mime_type":"application/pdf",'
        b'"size_bytes":1001,"created_at":"2025-01-02T03:04:05.678Z","downloadable":false}'
    )
    assert encode(shapes.file_object(record(1, "vision"), "openai")) == (
        b'{"_shape":"openai","id":"or_file_1","object":"file","bytes":1001,"created_at":1735787045,'
        b'"filename":"doc1.pdf","purpose":"vision","status":"processed"}'
    )
    page = shapes.list_object([record(1), record(2)], True, "openrouter")
    tail = b'],"has_more":true,"first_id":"or_file_1","last_id":"or_file_2","cursor":"or_file_2"}'
    assert encode(page).startswith(b'{"_shape":"openrouter","data":[{"_shape":"openrouter","id":"or_file_1",')
    assert encode(page).endswith(tail)
    assert encode(shapes.list_object([], False, "openai")) == (
        b'{"_shape":"openai","object":"list","data":[],"has_more":false,"first_id":null,"last_id":null}'
    )
    assert encode(shapes.list_object([], False, "anthropic")) == (
        b'{"_shape":"anthropic","data":[],"has_more":false,"first_id":null,"last_id":null}'
    )
    assert encode(shapes.deleted_object("or_file_9", "openai")) == (
        b'{"_shape":"openai","id":"or_file_9","object":"file","deleted":true}'
    )
    assert encode(shapes.deleted_object("or_file_9", "anthropic")) == (
        b'{"_shape":"anthropic","id":"or_file_9","type":"file_deleted"}'
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_a_client_decodes_each_answer_into_its_shape(shape: shapes.Shape) -> None:
    for _, _, answer, union, name in answers(shape):
        decoded = msgspec.json.decode(encode(answer), type=union, strict=True)
        assert type(decoded).__name__ == name and decoded == answer


@pytest.mark.parametrize("shape", SHAPES)
def test_each_answer_conforms_to_the_served_document_and_openrouters(shape: shapes.Shape) -> None:
    for path, method, answer, _, name in answers(shape):
        body = msgspec.json.decode(encode(answer))
        conforms(path, method, 200, body)  # strictly: no field the document does not name
        if spec_available():
            validate(body, name)


def test_the_document_names_the_shapes_as_openrouter_does() -> None:
    from omnirouter.openapi_doc import document

    ops = document()["paths"]
    for (path, method), kind in [(("/files", "get"), "FileList"), (("/files", "post"), "File"),
                                 (("/files/{file_id}", "get"), "File"),
                                 (("/files/{file_id}", "delete"), "FileDeleted")]:  # fmt: skip
        schema = ops[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        refs = {shape: f"#/components/schemas/{COMPONENT[shape]}{kind}" for shape in SHAPES}
        assert schema == {
            "oneOf": [{"$ref": ref} for ref in refs.values()],
            "discriminator": {"propertyName": "_shape", "mapping": refs},
        }


def test_the_documented_purposes_are_the_accepted_ones() -> None:
    assert set(get_args(Purpose)) == service.PURPOSES
