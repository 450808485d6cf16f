# Generated from _async/client.py by `python scripts/unasync_client.py`: edit that file, not this one.
"""The client: every operation the server serves, one method each, grouped by resource.

The asynchronous client (_async/client.py) is the one definition; the synchronous one is generated
from it (``python scripts/unasync_client.py``), so the two cannot drift. Results are the server's own Structs
(read through ``readable``); request bodies are keyword arguments (or ``body=`` a dict or Struct),
sent as the API takes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

import httpx

from omnirouter.api import health
from omnirouter.api import messages_schemas as ms
from omnirouter.api import schemas as s
from omnirouter.api.guardrails import (
    AssignedCount,
    DeleteGuardrailResponse,
    GuardrailResponse,
    ListGuardrailsResponse,
    ListKeyAssignmentsResponse,
    ListMemberAssignmentsResponse,
    UnassignedCount,
)
from omnirouter.client import errors
from omnirouter.client._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_DEADLINE,
    DEFAULT_TIMEOUT,
    PKCE,
    Binary,
    Call,
    Config,
    EventReader,
    FileInput,
    RawResponse,
    Retrying,
    SSEReader,
    body_of,
    connection_error,
    decode,
    file_part,
    path,
)
from omnirouter.files.schemas import FileDeleted, FileList, FileObject
from omnirouter.formats import responses_schemas as rs
from omnirouter.governance import byok_service as byok
from omnirouter.governance import preset_service as ps
from omnirouter.governance import workspace_service as ws
from omnirouter.governance.oauth import CodeResponse, ExchangeResponse
from omnirouter.modalities.embeddings import EmbeddingsResponse
from omnirouter.modalities.images import (
    ImageGenerationResponse,
    ImageModelEndpointsResponse,
    ImageModelsListResponse,
    OpenAIImagesResponse,
)
from omnirouter.modalities.rerank import RerankResponse
from omnirouter.modalities.transcriptions import STTResponse
from omnirouter.observability import destinations as od
from omnirouter.observability import schemas as obs
from omnirouter.videos.schemas import VideoGenerationResponse, VideoModelsListResponse

T = TypeVar("T")
Headers = Mapping[str, str] | None


class Transport:
    """Sends a Call with retries and reads its answer; one keep-alive connection pool per client."""

    def __init__(self, config: Config, http: httpx.Client | None, raw: bool = False) -> None:
        self.config = config
        self.http = http or httpx.Client(follow_redirects=False)
        self.raw = raw  # answer RawResponse(result, status, headers)

    def send(self, call: Call) -> httpx.Response:
        """The answer's response, its headers read (and for a stream nothing more); an error answer
        raised once retries are spent. A stream is retried only before its first byte."""
        retrying = Retrying(self.config.max_retries, self.config.retry_deadline)
        while True:
            request = call.request(self.http, self.config)
            try:
                response = self.http.send(request, stream=call.stream is not None)
            except httpx.HTTPError as exc:
                error: errors.OpenRouterError = connection_error(exc)
            else:
                if response.status_code < 400:
                    return response
                try:
                    response.read()
                finally:
                    response.close()
                error = errors.from_response(response.status_code, response.content, response.headers)
            wait = retrying.delay(error)
            if wait is None:
                raise error
            time.sleep(wait)

    def call(self, call: Call) -> Any:
        response = self.send(call)
        if call.stream is not None:
            result: Any = Stream(response, EventReader(call.stream, response.headers))
        else:
            result = decode(call, response)
        return RawResponse(result, response.status_code, response.headers) if self.raw else result

    def close(self) -> None:
        self.http.close()


class Stream(Generic[T]):
    """A streamed answer's events, typed, as they arrive. An error the server reports in the stream is
    raised as its APIError (``in_stream`` set); a stream cut short raises APIConnectionError. Close it
    (or use it as a context manager) to stop early."""

    def __init__(self, response: httpx.Response, reader: EventReader[T]) -> None:
        self.response = response
        self.reader = reader

    @property
    def generation_id(self) -> str | None:
        return self.response.headers.get("x-generation-id")

    def __iter__(self) -> Iterator[T]:
        return self.events()

    def events(self) -> Iterator[T]:
        sse, reader = SSEReader(), self.reader
        try:
            for line in self.response.iter_lines():
                event = sse.line(line)
                if event is not None and (item := reader.read(*event)) is not None:
                    yield item
            last = None if reader.done else sse.line("")  # a last event without its blank line
            if last is not None and (item := reader.read(*last)) is not None:
                yield item
        except httpx.HTTPError as exc:
            raise connection_error(exc) from None
        finally:
            self.response.close()
        if not reader.done:
            raise reader.cut()

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Resource:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _call(self, call: Call) -> Any:
        return self._t.call(call)

    def _infer(
        self, where: str, result: type, event: Any, stream: bool, body: Any, fields: dict[str, Any], headers: Headers
    ) -> Any:
        if stream and body is None:
            fields["stream"] = True
        sent = body_of(fields, body)  # a body given whole says itself whether it streams
        return self._call(Call("POST", where, result, body=sent, headers=headers,
                                     stream=event if _streams(sent) else None))  # fmt: skip


# ------------------------------------------------------------------------------------------- inference


class ChatCompletions(Resource):
    @overload
    def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> Stream[s.ChatStreamChunk]: ...
    @overload
    def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.ChatResult: ...
    def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.ChatResult | Stream[s.ChatStreamChunk]:
        """POST /chat/completions. With ``stream=True``, a stream of typed chunks."""
        return self._infer(
            "/chat/completions", s.ChatResult, s.ChatStreamChunk, stream, body, fields, extra_headers
        )


class Chat:
    def __init__(self, transport: Transport) -> None:
        self.completions = ChatCompletions(transport)


class Completions(Resource):
    @overload
    def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> Stream[s.TextCompletionChunk]: ...
    @overload
    def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.TextCompletionResult: ...
    def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.TextCompletionResult | Stream[s.TextCompletionChunk]:
        """POST /completions (legacy text completions)."""
        return self._infer(
            "/completions", s.TextCompletionResult, s.TextCompletionChunk, stream, body, fields, extra_headers
        )


class Responses(Resource):
    @overload
    def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> Stream[rs.ResponsesStreamEvent]: ...
    @overload
    def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> rs.ResponsesResult: ...
    def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> rs.ResponsesResult | Stream[rs.ResponsesStreamEvent]:
        """POST /responses (OpenAI's Responses API, any model)."""
        return self._infer(
            "/responses", rs.ResponsesResult, rs.ResponsesStreamEvent, stream, body, fields, extra_headers
        )


class Messages(Resource):
    @overload
    def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> Stream[ms.MessagesStreamEvent]: ...
    @overload
    def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> ms.MessagesResult: ...
    def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> ms.MessagesResult | Stream[ms.MessagesStreamEvent]:
        """POST /messages (Anthropic's Messages API, any model)."""
        return self._infer(
            "/messages", ms.MessagesResult, ms.MessagesStreamEvent, stream, body, fields, extra_headers
        )

    def count_tokens(self, *, body: Any = None, **fields: Any) -> ms.MessagesCountTokensResult:
        """POST /messages/count_tokens: an estimate, nothing billed."""
        return self._call(Call("POST", "/messages/count_tokens", ms.MessagesCountTokensResult,
                                     body=body_of(fields, body)))  # fmt: skip


class Embeddings(Resource):
    def create(self, *, body: Any = None, **fields: Any) -> EmbeddingsResponse:
        return self._call(Call("POST", "/embeddings", EmbeddingsResponse, body=body_of(fields, body)))

    def models(self, **query: Any) -> s.ModelsListResponse:
        return self._call(Call("GET", "/embeddings/models", s.ModelsListResponse, query=query))


class Rerank(Resource):
    def create(self, *, body: Any = None, **fields: Any) -> RerankResponse:
        return self._call(Call("POST", "/rerank", RerankResponse, body=body_of(fields, body)))


class Images(Resource):
    def generate(self, *, body: Any = None, **fields: Any) -> ImageGenerationResponse:
        """POST /images, OpenRouter's image generation."""
        return self._call(Call("POST", "/images", ImageGenerationResponse, body=body_of(fields, body)))

    def generations(self, *, body: Any = None, **fields: Any) -> OpenAIImagesResponse:
        """POST /images/generations, in OpenAI's shape."""
        return self._call(Call("POST", "/images/generations", OpenAIImagesResponse, body=body_of(fields, body)))

    def edit(
        self, *, image: FileInput, prompt: str, model: str, filename: str | None = None, **form: str
    ) -> OpenAIImagesResponse:
        """POST /images/edits (multipart, OpenAI's shape): `image` is bytes, a path or an open file."""
        files = {"image": file_part("image", image, filename, None)}
        return self._call(Call("POST", "/images/edits", OpenAIImagesResponse, files=files,
                                     form={"prompt": prompt, "model": model, **form}))  # fmt: skip

    def models(self, **query: Any) -> ImageModelsListResponse:
        return self._call(Call("GET", "/images/models", ImageModelsListResponse, query=query))

    def endpoints(self, author: str, slug: str | None = None) -> ImageModelEndpointsResponse:
        author, slug = _model_id(author, slug)
        return self._call(Call("GET", path("/images/models/{}/{}/endpoints", author, slug),
                                     ImageModelEndpointsResponse))  # fmt: skip


class Audio(Resource):
    def speech(self, *, body: Any = None, **fields: Any) -> Binary:
        """POST /audio/speech: the audio's bytes and media type."""
        return self._call(Call("POST", "/audio/speech", None, body=body_of(fields, body)))

    def transcriptions(self, *, body: Any = None, **fields: Any) -> STTResponse | str:
        """POST /audio/transcriptions: the transcript (a str for response_format text, srt or vtt)."""
        return self._call(Call("POST", "/audio/transcriptions", STTResponse, body=body_of(fields, body),
                                     text=True))  # fmt: skip


class Videos(Resource):
    def create(self, *, body: Any = None, **fields: Any) -> VideoGenerationResponse:
        """POST /videos: a job; poll it with get()."""
        return self._call(Call("POST", "/videos", VideoGenerationResponse, body=body_of(fields, body)))

    def get(self, job_id: str) -> VideoGenerationResponse:
        return self._call(Call("GET", path("/videos/{}", job_id), VideoGenerationResponse))

    def content(self, job_id: str, **query: Any) -> Binary:
        return self._call(Call("GET", path("/videos/{}/content", job_id), None, query=query))

    def models(self) -> VideoModelsListResponse:
        return self._call(Call("GET", "/videos/models", VideoModelsListResponse))


class Files(Resource):
    def list(self, **query: Any) -> FileList:
        return self._call(Call("GET", "/files", FileList, query=query))

    def upload(
        self, file: FileInput, *, filename: str | None = None, content_type: str | None = None,
        purpose: str | None = None,
    ) -> FileObject:  # fmt: skip
        """POST /files (multipart): bytes, a path or an open binary file. A `purpose` (OpenAI's) asks for
        OpenAI's shape of the answer; without one it is OpenRouter's."""
        form = {"purpose": purpose} if purpose is not None else None
        return self._call(Call("POST", "/files", FileObject, form=form,
                                     files={"file": file_part("file", file, filename, content_type)}))  # fmt: skip

    def get(self, file_id: str, **query: Any) -> FileObject:
        return self._call(Call("GET", path("/files/{}", file_id), FileObject, query=query))

    def content(self, file_id: str, **query: Any) -> Binary:
        return self._call(Call("GET", path("/files/{}/content", file_id), None, query=query))

    def delete(self, file_id: str, **query: Any) -> FileDeleted:
        return self._call(Call("DELETE", path("/files/{}", file_id), FileDeleted, query=query))


# ------------------------------------------------------------------------------------ models, providers


class Models(Resource):
    def list(self, **query: Any) -> s.ModelsListResponse:
        return self._call(Call("GET", "/models", s.ModelsListResponse, query=query))

    def count(self, **query: Any) -> s.ModelsCountResponse:
        return self._call(Call("GET", "/models/count", s.ModelsCountResponse, query=query))

    def user(self, **query: Any) -> s.ModelsListResponse:
        """GET /models/user: the models this key may use (its provider preferences and guardrails)."""
        return self._call(Call("GET", "/models/user", s.ModelsListResponse, query=query))

    def get(self, author: str, slug: str | None = None) -> s.ModelResponse:
        """GET /model/{author}/{slug}; ``get("openai/gpt-4o")`` works too."""
        author, slug = _model_id(author, slug)
        return self._call(Call("GET", path("/model/{}/{}", author, slug), s.ModelResponse))

    def endpoints(self, author: str, slug: str | None = None) -> s.ModelEndpointsResponse:
        author, slug = _model_id(author, slug)
        return self._call(Call("GET", path("/models/{}/{}/endpoints", author, slug), s.ModelEndpointsResponse))


class Endpoints(Resource):
    def zdr(self) -> s.ZdrEndpointsResponse:
        return self._call(Call("GET", "/endpoints/zdr", s.ZdrEndpointsResponse))


class Providers(Resource):
    def list(self) -> s.ProvidersResponse:
        return self._call(Call("GET", "/providers", s.ProvidersResponse))


# ------------------------------------------------------------------------------- keys, credits, usage


class Keys(Resource):
    def list(self, **query: Any) -> s.ApiKeyListResponse:
        return self._call(Call("GET", "/keys", s.ApiKeyListResponse, query=query))

    def create(self, *, body: Any = None, **fields: Any) -> s.CreateKeyResponse:
        """POST /keys: `key` in the answer is the secret, shown only here."""
        return self._call(Call("POST", "/keys", s.CreateKeyResponse, body=body_of(fields, body)))

    def get(self, hash: str) -> s.ApiKeyResponse:
        return self._call(Call("GET", path("/keys/{}", hash), s.ApiKeyResponse))

    def update(self, hash: str, *, body: Any = None, **fields: Any) -> s.ApiKeyResponse:
        return self._call(Call("PATCH", path("/keys/{}", hash), s.ApiKeyResponse, body=body_of(fields, body)))

    def delete(self, hash: str) -> s.DeleteKeyResponse:
        return self._call(Call("DELETE", path("/keys/{}", hash), s.DeleteKeyResponse))


class Key(Resource):
    def get(self, *, legacy: bool = False) -> s.CurrentKeyResponse:
        """GET /key, the calling key (``legacy=True``: the older GET /auth/key)."""
        return self._call(Call("GET", "/auth/key" if legacy else "/key", s.CurrentKeyResponse))


class Credits(Resource):
    def get(self) -> s.CreditsResponse:
        return self._call(Call("GET", "/credits", s.CreditsResponse))

    def coinbase(self) -> None:
        """POST /credits/coinbase: deprecated by OpenRouter; this server answers 410 (GoneError)."""
        return self._call(Call("POST", "/credits/coinbase", None))


class Generations(Resource):
    def get(self, id: str) -> s.GenerationResponse:
        return self._call(Call("GET", "/generation", s.GenerationResponse, query={"id": id}))

    def content(self, id: str) -> s.GenerationContentResponse:
        return self._call(Call("GET", "/generation/content", s.GenerationContentResponse, query={"id": id}))

    def feedback(self, *, body: Any = None, **fields: Any) -> obs.SubmitGenerationFeedbackResponse:
        return self._call(Call("POST", "/generation/feedback", obs.SubmitGenerationFeedbackResponse,
                                     body=body_of(fields, body)))  # fmt: skip


class Activity(Resource):
    def get(self, **query: Any) -> obs.ActivityResponse:
        return self._call(Call("GET", "/activity", obs.ActivityResponse, query=query))


class Analytics(Resource):
    def meta(self) -> obs.AnalyticsMetaResponse:
        return self._call(Call("GET", "/analytics/meta", obs.AnalyticsMetaResponse))

    def query(self, *, body: Any = None, **fields: Any) -> obs.AnalyticsQueryResponse:
        return self._call(Call("POST", "/analytics/query", obs.AnalyticsQueryResponse,
                                     body=body_of(fields, body)))  # fmt: skip


class Datasets(Resource):
    def app_rankings(self, **query: Any) -> obs.AppRankingsResponse:
        return self._call(Call("GET", "/datasets/app-rankings", obs.AppRankingsResponse, query=query))

    def rankings_daily(self, **query: Any) -> obs.RankingsDailyResponse:
        return self._call(Call("GET", "/datasets/rankings-daily", obs.RankingsDailyResponse, query=query))

    def session_cost(self, **query: Any) -> obs.SessionCostResponse:
        return self._call(Call("GET", "/datasets/session-cost", obs.SessionCostResponse, query=query))


class Benchmarks(Resource):
    def get(self, **query: Any) -> obs.UnifiedBenchmarksResponse:
        return self._call(Call("GET", "/benchmarks", obs.UnifiedBenchmarksResponse, query=query))


class Classifications(Resource):
    def task(self, **query: Any) -> obs.TaskClassificationResponse:
        return self._call(Call("GET", "/classifications/task", obs.TaskClassificationResponse, query=query))


# ---------------------------------------------------------------------------------------- governance


class GuardrailKeys(Resource):
    def list(self, id: str | None = None, **query: Any) -> ListKeyAssignmentsResponse:
        """Every key assignment, or (with a guardrail id) that guardrail's."""
        where = "/guardrails/assignments/keys" if id is None else path("/guardrails/{}/assignments/keys", id)
        return self._call(Call("GET", where, ListKeyAssignmentsResponse, query=query))

    def assign(self, id: str, *, body: Any = None, **fields: Any) -> AssignedCount:
        return self._call(Call("POST", path("/guardrails/{}/assignments/keys", id), AssignedCount,
                                     body=body_of(fields, body)))  # fmt: skip

    def unassign(self, id: str, *, body: Any = None, **fields: Any) -> UnassignedCount:
        return self._call(Call("POST", path("/guardrails/{}/assignments/keys/remove", id), UnassignedCount,
                                     body=body_of(fields, body)))  # fmt: skip


class GuardrailMembers(Resource):
    def list(self, id: str | None = None, **query: Any) -> ListMemberAssignmentsResponse:
        """Every member assignment, or (with a guardrail id) that guardrail's."""
        where = "/guardrails/assignments/members" if id is None else path("/guardrails/{}/assignments/members", id)
        return self._call(Call("GET", where, ListMemberAssignmentsResponse, query=query))

    def assign(self, id: str, *, body: Any = None, **fields: Any) -> AssignedCount:
        return self._call(Call("POST", path("/guardrails/{}/assignments/members", id), AssignedCount,
                                     body=body_of(fields, body)))  # fmt: skip

    def unassign(self, id: str, *, body: Any = None, **fields: Any) -> UnassignedCount:
        return self._call(Call("POST", path("/guardrails/{}/assignments/members/remove", id), UnassignedCount,
                                     body=body_of(fields, body)))  # fmt: skip


class Guardrails(Resource):
    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.keys = GuardrailKeys(transport)
        self.members = GuardrailMembers(transport)

    def list(self, **query: Any) -> ListGuardrailsResponse:
        return self._call(Call("GET", "/guardrails", ListGuardrailsResponse, query=query))

    def create(self, *, body: Any = None, **fields: Any) -> GuardrailResponse:
        return self._call(Call("POST", "/guardrails", GuardrailResponse, body=body_of(fields, body)))

    def get(self, id: str) -> GuardrailResponse:
        return self._call(Call("GET", path("/guardrails/{}", id), GuardrailResponse))

    def update(self, id: str, *, body: Any = None, **fields: Any) -> GuardrailResponse:
        return self._call(Call("PATCH", path("/guardrails/{}", id), GuardrailResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    def delete(self, id: str) -> DeleteGuardrailResponse:
        return self._call(Call("DELETE", path("/guardrails/{}", id), DeleteGuardrailResponse))


class WorkspaceBudgets(Resource):
    def list(self, id: str) -> ws.BudgetList:
        return self._call(Call("GET", path("/workspaces/{}/budgets", id), ws.BudgetList))

    def get(self, id: str, interval: str) -> ws.BudgetResponse:
        return self._call(Call("GET", path("/workspaces/{}/budgets/{}", id, interval), ws.BudgetResponse))

    def set(self, id: str, interval: str, *, body: Any = None, **fields: Any) -> ws.BudgetResponse:
        """PUT /workspaces/{id}/budgets/{interval}: create or replace the budget."""
        return self._call(Call("PUT", path("/workspaces/{}/budgets/{}", id, interval), ws.BudgetResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    def delete(self, id: str, interval: str) -> ws.Deleted:
        return self._call(Call("DELETE", path("/workspaces/{}/budgets/{}", id, interval), ws.Deleted))


class WorkspaceMembers(Resource):
    def list(self, id: str, **query: Any) -> ws.WorkspaceMemberList:
        return self._call(Call("GET", path("/workspaces/{}/members", id), ws.WorkspaceMemberList, query=query))

    def add(self, id: str, *, body: Any = None, **fields: Any) -> ws.AddedMembers:
        return self._call(Call("POST", path("/workspaces/{}/members/add", id), ws.AddedMembers,
                                     body=body_of(fields, body)))  # fmt: skip

    def remove(self, id: str, *, body: Any = None, **fields: Any) -> ws.RemovedMembers:
        return self._call(Call("POST", path("/workspaces/{}/members/remove", id), ws.RemovedMembers,
                                     body=body_of(fields, body)))  # fmt: skip


class Workspaces(Resource):
    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.budgets = WorkspaceBudgets(transport)
        self.members = WorkspaceMembers(transport)

    def list(self, **query: Any) -> ws.WorkspaceList:
        return self._call(Call("GET", "/workspaces", ws.WorkspaceList, query=query))

    def create(self, *, body: Any = None, **fields: Any) -> ws.WorkspaceResponse:
        return self._call(Call("POST", "/workspaces", ws.WorkspaceResponse, body=body_of(fields, body)))

    def get(self, id: str) -> ws.WorkspaceResponse:
        """A workspace by its id or its slug."""
        return self._call(Call("GET", path("/workspaces/{}", id), ws.WorkspaceResponse))

    def update(self, id: str, *, body: Any = None, **fields: Any) -> ws.WorkspaceResponse:
        return self._call(Call("PATCH", path("/workspaces/{}", id), ws.WorkspaceResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    def delete(self, id: str) -> ws.Deleted:
        return self._call(Call("DELETE", path("/workspaces/{}", id), ws.Deleted))


class Organization(Resource):
    def members(self, **query: Any) -> ws.OrganizationMemberList:
        return self._call(Call("GET", "/organization/members", ws.OrganizationMemberList, query=query))


class BYOK(Resource):
    def list(self, **query: Any) -> byok.BYOKKeyListResponse:
        return self._call(Call("GET", "/byok", byok.BYOKKeyListResponse, query=query))

    def create(self, *, body: Any = None, **fields: Any) -> byok.BYOKKeyResponse:
        return self._call(Call("POST", "/byok", byok.BYOKKeyResponse, body=body_of(fields, body)))

    def get(self, id: str) -> byok.BYOKKeyResponse:
        return self._call(Call("GET", path("/byok/{}", id), byok.BYOKKeyResponse))

    def update(self, id: str, *, body: Any = None, **fields: Any) -> byok.BYOKKeyResponse:
        return self._call(Call("PATCH", path("/byok/{}", id), byok.BYOKKeyResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    def delete(self, id: str) -> byok.DeleteBYOKKeyResponse:
        return self._call(Call("DELETE", path("/byok/{}", id), byok.DeleteBYOKKeyResponse))


class Presets(Resource):
    def list(self, **query: Any) -> ps.ListPresetsResponse:
        return self._call(Call("GET", "/presets", ps.ListPresetsResponse, query=query))

    def get(self, slug: str) -> ps.GetPresetResponse:
        return self._call(Call("GET", path("/presets/{}", slug), ps.GetPresetResponse))

    def versions(self, slug: str, **query: Any) -> ps.ListPresetVersionsResponse:
        return self._call(Call("GET", path("/presets/{}/versions", slug), ps.ListPresetVersionsResponse,
                                     query=query))  # fmt: skip

    def version(self, slug: str, version: int) -> ps.GetPresetVersionResponse:
        return self._call(Call("GET", path("/presets/{}/versions/{}", slug, version),
                                     ps.GetPresetVersionResponse))  # fmt: skip

    def create_from_chat(
        self, slug: str, *, body: Any = None, **fields: Any
    ) -> ps.CreatePresetFromInferenceResponse:
        """POST /presets/{slug}/chat/completions: a new version of the preset from a chat request body."""
        return self._from_inference(slug, "chat/completions", body_of(fields, body))

    def create_from_responses(
        self, slug: str, *, body: Any = None, **fields: Any
    ) -> ps.CreatePresetFromInferenceResponse:
        return self._from_inference(slug, "responses", body_of(fields, body))

    def create_from_messages(
        self, slug: str, *, body: Any = None, **fields: Any
    ) -> ps.CreatePresetFromInferenceResponse:
        return self._from_inference(slug, "messages", body_of(fields, body))

    def _from_inference(self, slug: str, kind: str, body: Any) -> ps.CreatePresetFromInferenceResponse:
        return self._call(Call("POST", path("/presets/{}/", slug) + kind, ps.CreatePresetFromInferenceResponse,
                                     body=body))  # fmt: skip


class Auth(Resource):
    @staticmethod
    def pkce() -> PKCE:
        """A fresh PKCE verifier and S256 challenge: send `challenge` to create_code, keep `verifier` for
        exchange_code."""
        return PKCE.new()

    def create_code(self, *, body: Any = None, **fields: Any) -> CodeResponse:
        """POST /auth/keys/code: an authorization code for an app (its callback_url, code_challenge...)."""
        return self._call(Call("POST", "/auth/keys/code", CodeResponse, body=body_of(fields, body)))

    def exchange_code(self, *, body: Any = None, **fields: Any) -> ExchangeResponse:
        """POST /auth/keys: the code (and its PKCE code_verifier) for an API key."""
        return self._call(Call("POST", "/auth/keys", ExchangeResponse, body=body_of(fields, body)))


class Destinations(Resource):
    def list(self, **query: Any) -> od.DestinationListResponse:
        return self._call(Call("GET", "/observability/destinations", od.DestinationListResponse, query=query))

    def create(self, *, body: Any = None, **fields: Any) -> od.DestinationResponse:
        return self._call(Call("POST", "/observability/destinations", od.DestinationResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    def get(self, id: str) -> od.DestinationResponse:
        return self._call(Call("GET", path("/observability/destinations/{}", id), od.DestinationResponse))

    def update(self, id: str, *, body: Any = None, **fields: Any) -> od.DestinationResponse:
        return self._call(Call("PATCH", path("/observability/destinations/{}", id), od.DestinationResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    def delete(self, id: str) -> od.DeleteDestinationResponse:
        return self._call(Call("DELETE", path("/observability/destinations/{}", id),
                                     od.DeleteDestinationResponse))  # fmt: skip


class Observability:
    def __init__(self, transport: Transport) -> None:
        self.destinations = Destinations(transport)


class Health(Resource):
    def live(self) -> health.Live:
        return self._call(Call("GET", "/health/live", health.Live))

    def ready(self) -> health.Ready:
        """GET /health/ready; a worker that is not ready answers 503 (ServiceUnavailableError)."""
        return self._call(Call("GET", "/health/ready", health.Ready))


# -------------------------------------------------------------------------------------------- client


class OpenRouter:
    """A client for OpenRouter or any Omnirouter.

    ``api_key`` and ``base_url`` default to $OPENROUTER_API_KEY and $OPENROUTER_BASE_URL (else
    OpenRouter's). Failed attempts are retried on 408, 429 (after its Retry-After), 5xx and lost
    connections, at most ``max_retries`` times and never past ``retry_deadline`` seconds after the first;
    a stream is never retried once it started. ``app_url``, ``app_title`` and ``app_categories`` are
    OpenRouter's app attribution: HTTP-Referer, X-OpenRouter-Title (and X-Title), X-OpenRouter-Categories.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_deadline: float = DEFAULT_RETRY_DEADLINE,
        app_url: str | None = None,
        app_title: str | None = None,
        app_categories: Sequence[str] | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        config = Config.of(api_key, base_url, timeout, max_retries, retry_deadline, app_url, app_title,
                           app_categories, default_headers)  # fmt: skip
        self._wire(Transport(config, http_client))

    @property
    def with_raw_response(self) -> OpenRouter:
        """The same client (same connections: close this one, not that) whose methods answer a
        RawResponse: the typed result with the response's status and headers."""
        other = object.__new__(type(self))
        other._wire(Transport(self._transport.config, self._transport.http, raw=True))
        return other

    def _wire(self, t: Transport) -> None:
        self._transport = t
        self.base_url = t.config.base_url
        self.chat = Chat(t)
        self.completions = Completions(t)
        self.responses = Responses(t)
        self.messages = Messages(t)
        self.embeddings = Embeddings(t)
        self.rerank = Rerank(t)
        self.images = Images(t)
        self.audio = Audio(t)
        self.videos = Videos(t)
        self.files = Files(t)
        self.models = Models(t)
        self.endpoints = Endpoints(t)
        self.providers = Providers(t)
        self.keys = Keys(t)
        self.key = Key(t)
        self.credits = Credits(t)
        self.generations = Generations(t)
        self.activity = Activity(t)
        self.analytics = Analytics(t)
        self.datasets = Datasets(t)
        self.benchmarks = Benchmarks(t)
        self.classifications = Classifications(t)
        self.guardrails = Guardrails(t)
        self.workspaces = Workspaces(t)
        self.organization = Organization(t)
        self.byok = BYOK(t)
        self.presets = Presets(t)
        self.auth = Auth(t)
        self.observability = Observability(t)
        self.health = Health(t)

    def openapi(self) -> dict[str, Any]:
        """GET /openapi.json: the server's OpenAPI document."""
        return self._transport.call(Call("GET", "/openapi.json", dict))

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text exposition."""
        return self._transport.call(Call("GET", "/metrics", str, text=True))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> OpenRouter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _streams(body: Any) -> bool:
    return bool(body.get("stream") if isinstance(body, dict) else getattr(body, "stream", False))


def _model_id(author: str, slug: str | None) -> tuple[str, str]:
    if slug is not None:
        return author, slug
    author, sep, slug = author.partition("/")
    if not sep:
        raise ValueError("a model is named author/slug")
    return author, slug
