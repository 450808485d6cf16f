"""What a request's plugins did: the fees they charge, the generation's details, the annotations of
the answer. One per request that runs any plugin (plugins/__init__.py)."""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any

from omnirouter.accounting.cost import ZERO

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call


class PluginRun:
    __slots__ = ("annotations", "chosen", "details", "fees", "headers", "text")

    def __init__(self, chosen: list[tuple[ModuleType, dict[str, Any] | None]]) -> None:
        self.chosen = chosen  # (module, the request's options or None), in the order they run
        self.fees: dict[str, Decimal] = {}  # what the plugins charge beside the model, by name
        # The generation's plugin fields: web_search_engine, num_search_results, num_fetches,
        # moderation_latency ... (stored in generations.plugins, shown by GET /generation).
        self.details: dict[str, Any] = {}
        self.annotations: list[dict[str, Any]] = []  # added to the answer's message (url_citation, file)
        self.headers: dict[str, str] = {}  # added to a non-streamed answer's response headers
        self.text = ""  # a streamed answer's text, at stream_delta (kept when there are annotations to place)

    def charge(self, name: str, amount: Decimal) -> None:
        self.fees[name] = self.fees.get(name, ZERO) + amount

    @property
    def fee(self) -> Decimal:
        return sum(self.fees.values(), ZERO)

    @staticmethod
    def changed(call: Call) -> None:
        """A plugin rewrote the request: the client's own body can no longer pass through as it came."""
        call.passthrough = None

    async def prepare(self, call: Call) -> None:
        for module, options in self.chosen:
            if (prepare := getattr(module, "prepare", None)) is not None:
                await prepare(call, options, self)

    def complete(self, call: Call, completion: dict[str, Any]) -> None:
        for module, options in self.chosen:
            if (complete := getattr(module, "complete", None)) is not None:
                complete(call, options, self, completion)
        if self.annotations:
            for choice in completion.get("choices") or ():
                message = choice.get("message")
                if isinstance(message, dict):
                    message["annotations"] = [*(message.get("annotations") or ()), *self.annotations]

    def stream_delta(self, call: Call, text: str = "") -> dict[str, Any] | None:
        """The delta of one last content chunk of a stream, or None. `text`: what the stream said."""
        self.text = text
        delta: dict[str, Any] = {}
        for module, options in self.chosen:
            if (extra := getattr(module, "stream_delta", None)) is not None and (d := extra(call, options, self)):
                delta.update(d)
        if self.annotations:
            delta["annotations"] = self.annotations
        return delta or None

    def record(self) -> dict[str, Any] | None:
        """The generation's `plugins` column."""
        if not self.details and not self.fees:
            return None
        out = dict(self.details)
        if self.fees:
            out["fees"] = {name: str(amount) for name, amount in self.fees.items()}
        return out
