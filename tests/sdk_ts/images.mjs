// POST /images, GET /images/models and GET /images/models/{author}/{slug}/endpoints through
// @openrouter/sdk, which validates each answer with its zod schemas. Run by tests/test_images.py: reads
// {serverURL, apiKey, imageModel?} as JSON on stdin (the model defaults to sandbox/image, priced 0.04 per
// image) and prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
// conformance.mjs may import `imageSteps(config)` instead: importing this module reads nothing.
import { OpenRouter } from "@openrouter/sdk";
import { runIfMain } from "./steps.mjs";

const PNG = "iVBORw0KGgo"; // base64 of a PNG's signature

function check(condition, what, seen) {
  if (!condition) throw new Error(`${what} (saw ${JSON.stringify(seen)?.slice(0, 400)})`);
}

export function imageSteps({ serverURL, apiKey, imageModel }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const model = imageModel ?? "sandbox/image";
  const [author, slug] = model.split("/");
  return {
    "images.generate": async () => {
      const res = await sdk.images.generate({
        imageGenerationRequest: { model, prompt: "a red panda astronaut", n: 2, aspectRatio: "16:9" },
      });
      check(Array.isArray(res.data) && res.data.length === 2, "two images", res);
      check(res.data.every((d) => d.b64Json.startsWith(PNG) && d.mediaType === "image/png"), "PNGs", res.data);
      check(res.data[0].b64Json !== res.data[1].b64Json, "different pictures", res.data);
      check(Number.isInteger(res.created) && res.usage.cost === 0.08, "created and cost", res.usage);
    },
    "images.listModels": async () => {
      const res = await sdk.images.listModels();
      const found = res.data.find((m) => m.id === model);
      check(found && found.architecture.outputModalities.includes("image"), "the model listed", res.data);
      check(found.endpoints.endsWith(`/images/models/${model}/endpoints`), "its endpoints URL", found);
    },
    "images.listModelEndpoints": async () => {
      const res = await sdk.images.listModelEndpoints({ author, slug });
      check(res.id === model && res.endpoints.length === 1, "its endpoint", res);
      const [price] = res.endpoints[0].pricing;
      check(price.billable === "output_image" && price.unit === "image" && price.costUsd === 0.04, "per image", price);
    },
    // Error answers must parse as the SDK's typed errors.
    "images.errors": async () => {
      const failure = (promise) => promise.then(() => null, (err) => err);
      const cases = [
        ["BadRequestResponseError", failure(sdk.images.generate({ imageGenerationRequest: { model, prompt: "x", n: 11 } }))],
        ["BadRequestResponseError", failure(sdk.images.generate({ imageGenerationRequest: { model: "test/typo", prompt: "x" } }))],
        ["NotFoundResponseError", failure(sdk.images.listModelEndpoints({ author, slug: "typo" }))],
        ["UnauthorizedResponseError", failure(new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL })
          .images.generate({ imageGenerationRequest: { model, prompt: "x" } }))],
      ];
      for (const [expected, pending] of cases) {
        const err = await pending;
        check(err?.name === expected, expected, String(err));
      }
    },
  };
}

await runIfMain(import.meta.url, imageSteps);
