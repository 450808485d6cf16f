"""JSON in and out with msgspec: one encoder, Decimal written as a JSON number."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec


def _enc_hook(obj: Any) -> Any:
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


# Money leaves the server as a JSON number with every digit the Decimal has ("0.00042", not a float's
# rounding), so what a client reads is exactly what the ledger holds.
encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=_enc_hook)
encode = encoder.encode
decode = msgspec.json.decode


def money(value: Decimal | None) -> Decimal | None:
    """Normalise a Decimal for output: no exponent, no trailing zeros ("0.00012", "5")."""
    if value is None:
        return None
    q = value.normalize()
    return q.quantize(Decimal(1)) if q == q.to_integral() else q
