"""Image generation upstreams, one module per API: `openai` (POST /images/generations and /images/edits),
`gemini` (generateContent with responseModalities IMAGE) and `sandbox` (a PNG drawn offline). Each is a
handler `(Upstream, request) -> ImageAnswer` for modalities/images.py; `request` is the request as
modalities/images.py validated it (fields in `request.py`)."""
