"""The client: every operation the server serves, one method each, grouped by resource.

The asynchronous client (_async/client.py) is the one definition; the synchronous one is generated
from it (``python scripts/unasync_client.py``), so the two cannot drift. Results are the server's own Structs
(read through ``readable``); request bodies are keyword arguments (or ``body=`` a dict or Struct),
sent as the API takes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
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


class AsyncTransport:
    """Sends a Call with retries and reads its answer; one keep-alive connection pool per client."""

    def __init__(self, config: Config, http: httpx.AsyncClient | None, raw: bool = False) -> None:
        self.config = config
        self.http = http or httpx.AsyncClient(follow_redirects=False)
        self.raw = raw  # answer RawResponse(result, status, headers)

    async def send(self, call: Call) -> httpx.Response:
        """The answer's response, its headers read (and for a stream nothing more); an error answer
        raised once retries are spent. A stream is retried only before its first byte."""
        retrying = Retrying(self.config.max_retries, self.config.retry_deadline)
        while True:
            request = call.request(self.http, self.config)
            try:
                response = await self.http.send(request, stream=call.stream is not None)
            except httpx.HTTPError as exc:
                error: errors.OpenRouterError = connection_error(exc)
            else:
                if response.status_code < 400:
                    return response
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                error = errors.from_response(response.status_code, response.content, response.headers)
            wait = retrying.delay(error)
            if wait is None:
                raise error
            await asyncio.sleep(wait)

    async def call(self, call: Call) -> Any:
        response = await self.send(call)
        if call.stream is not None:
            result: Any = AsyncStream(response, EventReader(call.stream, response.headers))
        else:
            result = decode(call, response)
        return RawResponse(result, response.status_code, response.headers) if self.raw else result

    async def aclose(self) -> None:
        await self.http.aclose()


class AsyncStream(Generic[T]):
    """A streamed answer's events, typed, as they arrive. An error the server reports in the stream is
    raised as its APIError (``in_stream`` set); a stream cut short raises APIConnectionError. Close it
    (or use it as a context manager) to stop early."""

    def __init__(self, response: httpx.Response, reader: EventReader[T]) -> None:
        self.response = response
        self.reader = reader

    @property
    def generation_id(self) -> str | None:
        return self.response.headers.get("x-generation-id")

    def __aiter__(self) -> AsyncIterator[T]:
        return self.events()

    async def events(self) -> AsyncIterator[T]:
        sse, reader = SSEReader(), self.reader
        try:
            async for line in self.response.aiter_lines():
                event = sse.line(line)
                if event is not None and (item := reader.read(*event)) is not None:
                    yield item
            last = None if reader.done else sse.line("")  # a last event without its blank line
            if last is not None and (item := reader.read(*last)) is not None:
                yield item
        except httpx.HTTPError as exc:
            raise connection_error(exc) from None
        finally:
            await self.response.aclose()
        if not reader.done:
            raise reader.cut()

    async def aclose(self) -> None:
        await self.response.aclose()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Resource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def _call(self, call: Call) -> Any:
        return await self._t.call(call)

    async def _infer(
        self, where: str, result: type, event: Any, stream: bool, body: Any, fields: dict[str, Any], headers: Headers
    ) -> Any:
        if stream and body is None:
            fields["stream"] = True
        sent = body_of(fields, body)  # a body given whole says itself whether it streams
        return await self._call(Call("POST", where, result, body=sent, headers=headers,
                                     stream=event if _streams(sent) else None))  # fmt: skip


# ------------------------------------------------------------------------------------------- inference


class ChatCompletions(Resource):
    @overload
    async def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> AsyncStream[s.ChatStreamChunk]: ...
    @overload
    async def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.ChatResult: ...
    async def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.ChatResult | AsyncStream[s.ChatStreamChunk]:
        """POST /chat/completions. With ``stream=True``, a stream of typed chunks."""
        return await self._infer(
            "/chat/completions", s.ChatResult, s.ChatStreamChunk, stream, body, fields, extra_headers
        )


class Chat:
    def __init__(self, transport: AsyncTransport) -> None:
        self.completions = ChatCompletions(transport)


class Completions(Resource):
    @overload
    async def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> AsyncStream[s.TextCompletionChunk]: ...
    @overload
    async def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.TextCompletionResult: ...
    async def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> s.TextCompletionResult | AsyncStream[s.TextCompletionChunk]:
        """POST /completions (legacy text completions)."""
        return await self._infer(
            "/completions", s.TextCompletionResult, s.TextCompletionChunk, stream, body, fields, extra_headers
        )


class Responses(Resource):
    @overload
    async def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> AsyncStream[rs.ResponsesStreamEvent]: ...
    @overload
    async def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> rs.ResponsesResult: ...
    async def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> rs.ResponsesResult | AsyncStream[rs.ResponsesStreamEvent]:
        """POST /responses (OpenAI's Responses API, any model)."""
        return await self._infer(
            "/responses", rs.ResponsesResult, rs.ResponsesStreamEvent, stream, body, fields, extra_headers
        )


class Messages(Resource):
    @overload
    async def create(
        self, *, stream: Literal[True], body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> AsyncStream[ms.MessagesStreamEvent]: ...
    @overload
    async def create(
        self, *, stream: Literal[False] = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> ms.MessagesResult: ...
    async def create(
        self, *, stream: bool = False, body: Any = None, extra_headers: Headers = None, **fields: Any
    ) -> ms.MessagesResult | AsyncStream[ms.MessagesStreamEvent]:
        """POST /messages (Anthropic's Messages API, any model)."""
        return await self._infer(
            "/messages", ms.MessagesResult, ms.MessagesStreamEvent, stream, body, fields, extra_headers
        )

    async def count_tokens(self, *, body: Any = None, **fields: Any) -> ms.MessagesCountTokensResult:
        """POST /messages/count_tokens: an estimate, nothing billed."""
        return await self._call(Call("POST", "/messages/count_tokens", ms.MessagesCountTokensResult,
                                     body=body_of(fields, body)))  # fmt: skip


class Embeddings(Resource):
    async def create(self, *, body: Any = None, **fields: Any) -> EmbeddingsResponse:
        return await self._call(Call("POST", "/embeddings", EmbeddingsResponse, body=body_of(fields, body)))

    async def models(self, **query: Any) -> s.ModelsListResponse:
        return await self._call(Call("GET", "/embeddings/models", s.ModelsListResponse, query=query))


class Rerank(Resource):
    async def create(self, *, body: Any = None, **fields: Any) -> RerankResponse:
        return await self._call(Call("POST", "/rerank", RerankResponse, body=body_of(fields, body)))


class Images(Resource):
    async def generate(self, *, body: Any = None, **fields: Any) -> ImageGenerationResponse:
        """POST /images, OpenRouter's image generation."""
        return await self._call(Call("POST", "/images", ImageGenerationResponse, body=body_of(fields, body)))

    async def generations(self, *, body: Any = None, **fields: Any) -> OpenAIImagesResponse:
        """POST /images/generations, in OpenAI's shape."""
        return await self._call(Call("POST", "/images/generations", OpenAIImagesResponse, body=body_of(fields, body)))

    async def edit(
        self, *, image: FileInput, prompt: str, model: str, filename: str | None = None, **form: str
    ) -> OpenAIImagesResponse:
        """POST /images/edits (multipart, OpenAI's shape): `image` is bytes, a path or an open file."""
        files = {"image": file_part("image", image, filename, None)}
        return await self._call(Call("POST", "/images/edits", OpenAIImagesResponse, files=files,
                                     form={"prompt": prompt, "model": model, **form}))  # fmt: skip

    async def models(self, **query: Any) -> ImageModelsListResponse:
        return await self._call(Call("GET", "/images/models", ImageModelsListResponse, query=query))

    async def endpoints(self, author: str, slug: str | None = None) -> ImageModelEndpointsResponse:
        author, slug = _model_id(author, slug)
        return await self._call(Call("GET", path("/images/models/{}/{}/endpoints", author, slug),
                                     ImageModelEndpointsResponse))  # fmt: skip


class Audio(Resource):
    async def speech(self, *, body: Any = None, **fields: Any) -> Binary:
        """POST /audio/speech: the audio's bytes and media type."""
        return await self._call(Call("POST", "/audio/speech", None, body=body_of(fields, body)))

    async def transcriptions(self, *, body: Any = None, **fields: Any) -> STTResponse | str:
        """POST /audio/transcriptions: the transcript (a str for response_format text, srt or vtt)."""
        return await self._call(Call("POST", "/audio/transcriptions", STTResponse, body=body_of(fields, body),
                                     text=True))  # fmt: skip


class Videos(Resource):
    async def create(self, *, body: Any = None, **fields: Any) -> VideoGenerationResponse:
        """POST /videos: a job; poll it with get()."""
        return await self._call(Call("POST", "/videos", VideoGenerationResponse, body=body_of(fields, body)))

    async def get(self, job_id: str) -> VideoGenerationResponse:
        return await self._call(Call("GET", path("/videos/{}", job_id), VideoGenerationResponse))

    async def content(self, job_id: str, **query: Any) -> Binary:
        return await self._call(Call("GET", path("/videos/{}/content", job_id), None, query=query))

    async def models(self) -> VideoModelsListResponse:
        return await self._call(Call("GET", "/videos/models", VideoModelsListResponse))


class Files(Resource):
    async def list(self, **query: Any) -> FileList:
        return await self._call(Call("GET", "/files", FileList, query=query))

    async def upload(
        self, file: FileInput, *, filename: str | None = None, content_type: str | None = None,
        purpose: str | None = None,
    ) -> FileObject:  # fmt: skip
        """POST /files (multipart): bytes, a path or an open binary file. A `purpose` (OpenAI's) asks for
        OpenAI's shape of the answer; without one it is OpenRouter's."""
        form = {"purpose": purpose} if purpose is not None else None
        return await self._call(Call("POST", "/files", FileObject, form=form,
                                     files={"file": file_part("file", file, filename, content_type)}))  # fmt: skip

    async def get(self, file_id: str, **query: Any) -> FileObject:
        return await self._call(Call("GET", path("/files/{}", file_id), FileObject, query=query))

    async def content(self, file_id: str, **query: Any) -> Binary:
        return await self._call(Call("GET", path("/files/{}/content", file_id), None, query=query))

    async def delete(self, file_id: str, **query: Any) -> FileDeleted:
        return await self._call(Call("DELETE", path("/files/{}", file_id), FileDeleted, query=query))


# ------------------------------------------------------------------------------------ models, providers


class Models(Resource):
    async def list(self, **query: Any) -> s.ModelsListResponse:
        return await self._call(Call("GET", "/models", s.ModelsListResponse, query=query))

    async def count(self, **query: Any) -> s.ModelsCountResponse:
        return await self._call(Call("GET", "/models/count", s.ModelsCountResponse, query=query))

    async def user(self, **query: Any) -> s.ModelsListResponse:
        """GET /models/user: the models this key may use (its provider preferences and guardrails)."""
        return await self._call(Call("GET", "/models/user", s.ModelsListResponse, query=query))

    async def get(self, author: str, slug: str | None = None) -> s.ModelResponse:
        """GET /model/{author}/{slug}; ``get("openai/gpt-4o")`` works too."""
        author, slug = _model_id(author, slug)
        return await self._call(Call("GET", path("/model/{}/{}", author, slug), s.ModelResponse))

    async def endpoints(self, author: str, slug: str | None = None) -> s.ModelEndpointsResponse:
        author, slug = _model_id(author, slug)
        return await self._call(Call("GET", path("/models/{}/{}/endpoints", author, slug), s.ModelEndpointsResponse))


class Endpoints(Resource):
    async def zdr(self) -> s.ZdrEndpointsResponse:
        return await self._call(Call("GET", "/endpoints/zdr", s.ZdrEndpointsResponse))


class Providers(Resource):
    async def list(self) -> s.ProvidersResponse:
        return await self._call(Call("GET", "/providers", s.ProvidersResponse))


# ------------------------------------------------------------------------------- keys, credits, usage


class Keys(Resource):
    async def list(self, **query: Any) -> s.ApiKeyListResponse:
        return await self._call(Call("GET", "/keys", s.ApiKeyListResponse, query=query))

    async def create(self, *, body: Any = None, **fields: Any) -> s.CreateKeyResponse:
        """POST /keys: `key` in the answer is the secret, shown only here."""
        return await self._call(Call("POST", "/keys", s.CreateKeyResponse, body=body_of(fields, body)))

    async def get(self, hash: str) -> s.ApiKeyResponse:
        return await self._call(Call("GET", path("/keys/{}", hash), s.ApiKeyResponse))

    async def update(self, hash: str, *, body: Any = None, **fields: Any) -> s.ApiKeyResponse:
        return await self._call(Call("PATCH", path("/keys/{}", hash), s.ApiKeyResponse, body=body_of(fields, body)))

    async def delete(self, hash: str) -> s.DeleteKeyResponse:
        return await self._call(Call("DELETE", path("/keys/{}", hash), s.DeleteKeyResponse))


class Key(Resource):
    async def get(self, *, legacy: bool = False) -> s.CurrentKeyResponse:
        """GET /key, the calling key (``legacy=True``: the older GET /auth/key)."""
        return await self._call(Call("GET", "/auth/key" if legacy else "/key", s.CurrentKeyResponse))


class Credits(Resource):
    async def get(self) -> s.CreditsResponse:
        return await self._call(Call("GET", "/credits", s.CreditsResponse))

    async def coinbase(self) -> None:
        """POST /credits/coinbase: deprecated by OpenRouter; this server answers 410 (GoneError)."""
        return await self._call(Call("POST", "/credits/coinbase", None))


class Generations(Resource):
    async def get(self, id: str) -> s.GenerationResponse:
        return await self._call(Call("GET", "/generation", s.GenerationResponse, query={"id": id}))

    async def content(self, id: str) -> s.GenerationContentResponse:
        return await self._call(Call("GET", "/generation/content", s.GenerationContentResponse, query={"id": id}))

    async def feedback(self, *, body: Any = None, **fields: Any) -> obs.SubmitGenerationFeedbackResponse:
        return await self._call(Call("POST", "/generation/feedback", obs.SubmitGenerationFeedbackResponse,
                                     body=body_of(fields, body)))  # fmt: skip


class Activity(Resource):
    async def get(self, **query: Any) -> obs.ActivityResponse:
        return await self._call(Call("GET", "/activity", obs.ActivityResponse, query=query))


class Analytics(Resource):
    async def meta(self) -> obs.AnalyticsMetaResponse:
        return await self._call(Call("GET", "/analytics/meta", obs.AnalyticsMetaResponse))

    async def query(self, *, body: Any = None, **fields: Any) -> obs.AnalyticsQueryResponse:
        return await self._call(Call("POST", "/analytics/query", obs.AnalyticsQueryResponse,
                                     body=body_of(fields, body)))  # fmt: skip


class Datasets(Resource):
    async def app_rankings(self, **query: Any) -> obs.AppRankingsResponse:
        return await self._call(Call("GET", "/datasets/app-rankings", obs.AppRankingsResponse, query=query))

    async def rankings_daily(self, **query: Any) -> obs.RankingsDailyResponse:
        return await self._call(Call("GET", "/datasets/rankings-daily", obs.RankingsDailyResponse, query=query))

    async def session_cost(self, **query: Any) -> obs.SessionCostResponse:
        return await self._call(Call("GET", "/datasets/session-cost", obs.SessionCostResponse, query=query))


class Benchmarks(Resource):
    async def get(self, **query: Any) -> obs.UnifiedBenchmarksResponse:
        return await self._call(Call("GET", "/benchmarks", obs.UnifiedBenchmarksResponse, query=query))


class Classifications(Resource):
    async def task(self, **query: Any) -> obs.TaskClassificationResponse:
        return await self._call(Call("GET", "/classifications/task", obs.TaskClassificationResponse, query=query))


# ---------------------------------------------------------------------------------------- governance


class GuardrailKeys(Resource):
    async def list(self, id: str | None = None, **query: Any) -> ListKeyAssignmentsResponse:
        """Every key assignment, or (with a guardrail id) that guardrail's."""
        where = "/guardrails/assignments/keys" if id is None else path("/guardrails/{}/assignments/keys", id)
        return await self._call(Call("GET", where, ListKeyAssignmentsResponse, query=query))

    async def assign(self, id: str, *, body: Any = None, **fields: Any) -> AssignedCount:
        return await self._call(Call("POST", path("/guardrails/{}/assignments/keys", id), AssignedCount,
                                     body=body_of(fields, body)))  # fmt: skip

    async def unassign(self, id: str, *, body: Any = None, **fields: Any) -> UnassignedCount:
        return await self._call(Call("POST", path("/guardrails/{}/assignments/keys/remove", id), UnassignedCount,
                                     body=body_of(fields, body)))  # fmt: skip


class GuardrailMembers(Resource):
    async def list(self, id: str | None = None, **query: Any) -> ListMemberAssignmentsResponse:
        """Every member assignment, or (with a guardrail id) that guardrail's."""
        where = "/guardrails/assignments/members" if id is None else path("/guardrails/{}/assignments/members", id)
        return await self._call(Call("GET", where, ListMemberAssignmentsResponse, query=query))

    async def assign(self, id: str, *, body: Any = None, **fields: Any) -> AssignedCount:
        return await self._call(Call("POST", path("/guardrails/{}/assignments/members", id), AssignedCount,
                                     body=body_of(fields, body)))  # fmt: skip

    async def unassign(self, id: str, *, body: Any = None, **fields: Any) -> UnassignedCount:
        return await self._call(Call("POST", path("/guardrails/{}/assignments/members/remove", id), UnassignedCount,
                                     body=body_of(fields, body)))  # fmt: skip


class Guardrails(Resource):
    def __init__(self, transport: AsyncTransport) -> None:
        super().__init__(transport)
        self.keys = GuardrailKeys(transport)
        self.members = GuardrailMembers(transport)

    async def list(self, **query: Any) -> ListGuardrailsResponse:
        return await self._call(Call("GET", "/guardrails", ListGuardrailsResponse, query=query))

    async def create(self, *, body: Any = None, **fields: Any) -> GuardrailResponse:
        return await self._call(Call("POST", "/guardrails", GuardrailResponse, body=body_of(fields, body)))

    async def get(self, id: str) -> GuardrailResponse:
        return await self._call(Call("GET", path("/guardrails/{}", id), GuardrailResponse))

    async def update(self, id: str, *, body: Any = None, **fields: Any) -> GuardrailResponse:
        return await self._call(Call("PATCH", path("/guardrails/{}", id), GuardrailResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    async def delete(self, id: str) -> DeleteGuardrailResponse:
        return await self._call(Call("DELETE", path("/guardrails/{}", id), DeleteGuardrailResponse))


class WorkspaceBudgets(Resource):
    async def list(self, id: str) -> ws.BudgetList:
        return await self._call(Call("GET", path("/workspaces/{}/budgets", id), ws.BudgetList))

    async def get(self, id: str, interval: str) -> ws.BudgetResponse:
        return await self._call(Call("GET", path("/workspaces/{}/budgets/{}", id, interval), ws.BudgetResponse))

    async def set(self, id: str, interval: str, *, body: Any = None, **fields: Any) -> ws.BudgetResponse:
        """PUT /workspaces/{id}/budgets/{interval}: create or replace the budget."""
        return await self._call(Call("PUT", path("/workspaces/{}/budgets/{}", id, interval), ws.BudgetResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    async def delete(self, id: str, interval: str) -> ws.Deleted:
        return await self._call(Call("DELETE", path("/workspaces/{}/budgets/{}", id, interval), ws.Deleted))


class WorkspaceMembers(Resource):
    async def list(self, id: str, **query: Any) -> ws.WorkspaceMemberList:
        return await self._call(Call("GET", path("/workspaces/{}/members", id), ws.WorkspaceMemberList, query=query))

    async def add(self, id: str, *, body: Any = None, **fields: Any) -> ws.AddedMembers:
        return await self._call(Call("POST", path("/workspaces/{}/members/add", id), ws.AddedMembers,
                                     body=body_of(fields, body)))  # fmt: skip

    async def remove(self, id: str, *, body: Any = None, **fields: Any) -> ws.RemovedMembers:
        return await self._call(Call("POST", path("/workspaces/{}/members/remove", id), ws.RemovedMembers,
                                     body=body_of(fields, body)))  # fmt: skip


class Workspaces(Resource):
    def __init__(self, transport: AsyncTransport) -> None:
        super().__init__(transport)
        self.budgets = WorkspaceBudgets(transport)
        self.members = WorkspaceMembers(transport)

    async def list(self, **query: Any) -> ws.WorkspaceList:
        return await self._call(Call("GET", "/workspaces", ws.WorkspaceList, query=query))

    async def create(self, *, body: Any = None, **fields: Any) -> ws.WorkspaceResponse:
        return await self._call(Call("POST", "/workspaces", ws.WorkspaceResponse, body=body_of(fields, body)))

    async def get(self, id: str) -> ws.WorkspaceResponse:
        """A workspace by its id or its slug."""
        return await self._call(Call("GET", path("/workspaces/{}", id), ws.WorkspaceResponse))

    async def update(self, id: str, *, body: Any = None, **fields: Any) -> ws.WorkspaceResponse:
        return await self._call(Call("PATCH", path("/workspaces/{}", id), ws.WorkspaceResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    async def delete(self, id: str) -> ws.Deleted:
        return await self._call(Call("DELETE", path("/workspaces/{}", id), ws.Deleted))


class Organization(Resource):
    async def members(self, **query: Any) -> ws.OrganizationMemberList:
        return await self._call(Call("GET", "/organization/members", ws.OrganizationMemberList, query=query))


class BYOK(Resource):
    async def list(self, **query: Any) -> byok.BYOKKeyListResponse:
        return await self._call(Call("GET", "/byok", byok.BYOKKeyListResponse, query=query))

    async def create(self, *, body: Any = None, **fields: Any) -> byok.BYOKKeyResponse:
        return await self._call(Call("POST", "/byok", byok.BYOKKeyResponse, body=body_of(fields, body)))

    async def get(self, id: str) -> byok.BYOKKeyResponse:
        return await self._call(Call("GET", path("/byok/{}", id), byok.BYOKKeyResponse))

    async def update(self, id: str, *, body: Any = None, **fields: Any) -> byok.BYOKKeyResponse:
        return await self._call(Call("PATCH", path("/byok/{}", id), byok.BYOKKeyResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    async def delete(self, id: str) -> byok.DeleteBYOKKeyResponse:
        return await self._call(Call("DELETE", path("/byok/{}", id), byok.DeleteBYOKKeyResponse))


class Presets(Resource):
    async def list(self, **query: Any) -> ps.ListPresetsResponse:
        return await self._call(Call("GET", "/presets", ps.ListPresetsResponse, query=query))

    async def get(self, slug: str) -> ps.GetPresetResponse:
        return await self._call(Call("GET", path("/presets/{}", slug), ps.GetPresetResponse))

    async def versions(self, slug: str, **query: Any) -> ps.ListPresetVersionsResponse:
        return await self._call(Call("GET", path("/presets/{}/versions", slug), ps.ListPresetVersionsResponse,
                                     query=query))  # fmt: skip

    async def version(self, slug: str, version: int) -> ps.GetPresetVersionResponse:
        return await self._call(Call("GET", path("/presets/{}/versions/{}", slug, version),
                                     ps.GetPresetVersionResponse))  # fmt: skip

    async def create_from_chat(
        self, slug: str, *, body: Any = None, **fields: Any
    ) -> ps.CreatePresetFromInferenceResponse:
        """POST /presets/{slug}/chat/completions: a new version of the preset from a chat request body."""
        return await self._from_inference(slug, "chat/completions", body_of(fields, body))

    async def create_from_responses(
        self, slug: str, *, body: Any = None, **fields: Any
    ) -> ps.CreatePresetFromInferenceResponse:
        return await self._from_inference(slug, "responses", body_of(fields, body))

    async def create_from_messages(
        self, slug: str, *, body: Any = None, **fields: Any
    ) -> ps.CreatePresetFromInferenceResponse:
        return await self._from_inference(slug, "messages", body_of(fields, body))

    async def _from_inference(self, slug: str, kind: str, body: Any) -> ps.CreatePresetFromInferenceResponse:
        return await self._call(Call("POST", path("/presets/{}/", slug) + kind, ps.CreatePresetFromInferenceResponse,
                                     body=body))  # fmt: skip


class Auth(Resource):
    @staticmethod
    def pkce() -> PKCE:
        """A fresh PKCE verifier and S256 challenge: send `challenge` to create_code, keep `verifier` for
        exchange_code."""
        return PKCE.new()

    async def create_code(self, *, body: Any = None, **fields: Any) -> CodeResponse:
        """POST /auth/keys/code: an authorization code for an app (its callback_url, code_challenge...)."""
        return await self._call(Call("POST", "/auth/keys/code", CodeResponse, body=body_of(fields, body)))

    async def exchange_code(self, *, body: Any = None, **fields: Any) -> ExchangeResponse:
        """POST /auth/keys: the code (and its PKCE code_verifier) for an API key."""
        return await self._call(Call("POST", "/auth/keys", ExchangeResponse, body=body_of(fields, body)))


class Destinations(Resource):
    async def list(self, **query: Any) -> od.DestinationListResponse:
        return await self._call(Call("GET", "/observability/destinations", od.DestinationListResponse, query=query))

    async def create(self, *, body: Any = None, **fields: Any) -> od.DestinationResponse:
        return await self._call(Call("POST", "/observability/destinations", od.DestinationResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    async def get(self, id: str) -> od.DestinationResponse:
        return await self._call(Call("GET", path("/observability/destinations/{}", id), od.DestinationResponse))

    async def update(self, id: str, *, body: Any = None, **fields: Any) -> od.DestinationResponse:
        return await self._call(Call("PATCH", path("/observability/destinations/{}", id), od.DestinationResponse,
                                     body=body_of(fields, body)))  # fmt: skip

    async def delete(self, id: str) -> od.DeleteDestinationResponse:
        return await self._call(Call("DELETE", path("/observability/destinations/{}", id),
                                     od.DeleteDestinationResponse))  # fmt: skip


class Observability:
    def __init__(self, transport: AsyncTransport) -> None:
        self.destinations = Destinations(transport)


class Health(Resource):
    async def live(self) -> health.Live:
        return await self._call(Call("GET", "/health/live", health.Live))

    async def ready(self) -> health.Ready:
        """GET /health/ready; a worker that is not ready answers 503 (ServiceUnavailableError)."""
        return await self._call(Call("GET", "/health/ready", health.Ready))


# -------------------------------------------------------------------------------------------- client


class AsyncOpenRouter:
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        config = Config.of(api_key, base_url, timeout, max_retries, retry_deadline, app_url, app_title,
                           app_categories, default_headers)  # fmt: skip
        self._wire(AsyncTransport(config, http_client))

    @property
    def with_raw_response(self) -> AsyncOpenRouter:
        """The same client (same connections: close this one, not that) whose methods answer a
        RawResponse: the typed result with the response's status and headers."""
        other = object.__new__(type(self))
        other._wire(AsyncTransport(self._transport.config, self._transport.http, raw=True))
        return other

    def _wire(self, t: AsyncTransport) -> None:
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

    async def openapi(self) -> dict[str, Any]:
        """GET /openapi.json: the server's OpenAPI document."""
        return await self._transport.call(Call("GET", "/openapi.json", dict))

    async def metrics(self) -> str:
        """GET /metrics: the Prometheus text exposition."""
        return await self._transport.call(Call("GET", "/metrics", str, text=True))

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncOpenRouter:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _streams(body: Any) -> bool:
    return bool(body.get("stream") if isinstance(body, dict) else getattr(body, "stream", False))


def _model_id(author: str, slug: str | None) -> tuple[str, str]:
    if slug is not None:
        return author, slug
    author, sep, slug = author.partition("/")
    if not sep:
        raise ValueError("a model is named author/slug")
    return author, slug
