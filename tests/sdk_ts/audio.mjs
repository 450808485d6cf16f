// POST /audio/speech and POST /audio/transcriptions through @openrouter/sdk, which validates each JSON
// answer with its zod schemas. Run by tests/test_transcriptions.py: reads {serverURL, apiKey, maxBytes?}
// (maxBytes: the gateway's transcription_max_bytes, for a 413 check) as JSON on stdin
// and prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does. The
// sandbox's speech carries its text, so its transcription must give the text back.
import { OpenRouter } from "@openrouter/sdk";
import { check, readConfig, runSteps } from "./steps.mjs";

const config = await readConfig();
const { serverURL, apiKey, maxBytes } = config;
const sdk = new OpenRouter({ apiKey, serverURL });
const said = "Speech from the TypeScript SDK.";

async function bytesOf(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function speech(responseFormat) {
  const stream = await sdk.tts.createSpeech({
    speechRequest: { model: "sandbox/speech", input: said, voice: "alloy", responseFormat },
  });
  return bytesOf(stream);
}

export const steps = {
  "tts.createSpeech": async () => {
    const wav = await speech("wav");
    check(wav.subarray(0, 4).toString() === "RIFF" && wav.subarray(8, 12).toString() === "WAVE", "a WAV", wav.length);
    // 60 ms per character of 16-bit samples at 24 kHz, after the 44-byte header
    check(wav.length === 44 + Math.floor(said.length * 0.06 * 24000) * 2, "its length", wav.length);
    const pcm = await speech("pcm");
    check(pcm.length === wav.length - 44, "pcm is the same samples", pcm.length);
  },
  "stt.createTranscription": async () => {
    const wav = await speech("wav");
    const res = await sdk.stt.createTranscription({
      sttRequest: { model: "sandbox/transcribe", inputAudio: { data: wav.toString("base64"), format: "wav" } },
    });
    check(res.text === said, "the text back", res);
    const seconds = said.length * 0.06;
    check(Math.abs(res.usage.seconds - seconds) < 1e-9 && Math.abs(res.usage.cost - seconds * 0.0001) < 1e-12,
      "usage in seconds and its cost", res.usage);
  },
  "stt.createTranscriptionMultipart": async () => {
    const wav = await speech("wav");
    const res = await sdk.stt.createTranscriptionMultipart({
      requestBody: {
        model: "sandbox/transcribe", file: { fileName: "said.wav", content: new Uint8Array(wav) },
        responseFormat: "verbose_json", timestampGranularities: ["word", "segment"],
      },
    });
    check(res.text === said && res.task === "transcribe", "the text back", res);
    check(res.segments.length === 1 && res.words.length === said.split(" ").length, "segments and words", res);
    check(Math.abs(res.duration - said.length * 0.06) < 1e-9, "the duration", res.duration);
  },
  // Error answers must parse as the SDK's typed errors.
  "errors": async () => {
    const failure = (promise) => promise.then(() => null, (err) => err);
    const cases = [
      ["BadRequestResponseError", failure(sdk.tts.createSpeech({ speechRequest: { model: "sandbox/speech", input: "" } }))],
      ["BadRequestResponseError", failure(sdk.tts.createSpeech({ speechRequest: { model: "test/typo", input: "hi" } }))],
      ["BadRequestResponseError", failure(sdk.stt.createTranscription({
        sttRequest: { model: "sandbox/transcribe", inputAudio: { data: "%%", format: "wav" } } }))],
      ["UnauthorizedResponseError", failure(new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL })
        .stt.createTranscription({ sttRequest: { model: "sandbox/transcribe", inputAudio: { data: "UklG", format: "wav" } } }))],
    ];
    if (maxBytes) {  // one byte over the gateway's upload limit
      const big = Buffer.alloc(maxBytes + 1).toString("base64");
      cases.push(["PayloadTooLargeResponseError", failure(sdk.stt.createTranscription({
        sttRequest: { model: "sandbox/transcribe", inputAudio: { data: big, format: "wav" } } }))]);
    }
    for (const [expected, pending] of cases) {
      const err = await pending;
      check(err?.name === expected, expected, String(err));
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await runSteps(steps);
