// Video jobs through @openrouter/sdk, which validates each answer with its zod schemas. Run by
// tests/test_videos.py: reads {serverURL, apiKey, model?, soraModel?} as JSON on stdin (the model
// defaults to sandbox/video; the upstream check runs only when an OpenAI-served video model is named)
// and prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does. The
// checks share one sandbox job of two seconds, polled until it completes (a gateway with short
// video_poll_initial/video_poll_max finishes it in a fraction of a second).
// conformance.mjs may import `videoSteps(config)` instead: importing this module reads nothing.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

async function finished(sdk, jobId) {
  for (let i = 0; i < 1000; i++) {
    const job = await sdk.videoGeneration.getGeneration({ jobId });
    if (job.status === "completed" || job.status === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`job ${jobId} did not finish`);
}

async function bytesOf(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export function videoSteps({ serverURL, apiKey, model = "sandbox/video", soraModel }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  let jobId = null;
  const steps = {
    "videoGeneration.generate": async () => {
      const job = await sdk.videoGeneration.generate({
        videoGenerationRequest: { model, prompt: "a paper boat on a pond", duration: 2, aspectRatio: "16:9" },
      });
      check(job.id.startsWith("gen-vid-") && job.status === "pending", "a pending job", job);
      check(job.pollingUrl === `${serverURL}/videos/${job.id}` && job.generationId.startsWith("gen-"), "its URLs", job);
      jobId = job.id;
    },
    "videoGeneration.getGeneration": async () => {
      const job = await finished(sdk, jobId);
      check(job.status === "completed" && job.usage.cost === 0.1 && job.usage.isByok === false, "completed, 2 s", job);
      check(job.unsignedUrls.length === 1 && job.unsignedUrls[0].endsWith(`/videos/${jobId}/content?index=0`),
        "its content URL", job.unsignedUrls);
    },
    "videoGeneration.getVideoContent": async () => {
      const video = await bytesOf(await sdk.videoGeneration.getVideoContent({ jobId, index: 0 }));
      check(video.subarray(4, 8).toString() === "ftyp" && video.includes(Buffer.from("mdat")), "an MP4", video.length);
    },
    "videoGeneration.listVideosModels": async () => {
      const listed = await sdk.videoGeneration.listVideosModels();
      const sandbox = listed.data.find((m) => m.id === model);
      check(sandbox && sandbox.pricingSkus.video_second === "0.05" && sandbox.supportedDurations === null,
        "the sandbox model", listed.data);
    },
    "videoGeneration.upstream": soraModel && (async () => {
      const job = await sdk.videoGeneration.generate({
        videoGenerationRequest: { model: soraModel, prompt: "a heron", duration: 4 },
      });
      const done = await finished(sdk, job.id);
      check(done.status === "completed" && done.usage.cost === 0.4, "billed 4 s at 0.1", done);
    }),
    // Error answers must parse as the SDK's typed errors.
    "errors": async () => {
      const failure = (promise) => promise.then(() => null, (err) => err);
      const stranger = new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL });
      const cases = [
        ["BadRequestResponseError", failure(sdk.videoGeneration.generate({
          videoGenerationRequest: { model, prompt: "x", duration: 0 } }))],
        ["NotFoundResponseError", failure(sdk.videoGeneration.getGeneration({ jobId: "gen-vid-1-00000000000000000000" }))],
        ["NotFoundResponseError", failure(sdk.videoGeneration.getVideoContent({ jobId: "gen-vid-1-00000000000000000000" }))],
        ["UnauthorizedResponseError", failure(stranger.videoGeneration.getGeneration({ jobId }))],
      ];
      for (const [expected, pending] of cases) {
        const err = await pending;
        check(err?.name === expected, expected, String(err));
      }
    },
  };
  return steps;
}

await runIfMain(import.meta.url, videoSteps);
