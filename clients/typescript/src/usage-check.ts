// Compiled by the test suite (`tsc --noEmit`): uses the generated types the way a frontend
// would, so a change of the API that breaks such code fails the build. Not shipped.
import type { components, operations, paths } from "./genbus-api";

type Generation = components["schemas"]["GenerationPublic"];
type GenerationCreate = components["schemas"]["GenerationCreate"];
type Problem = components["schemas"]["Problem"];
type Page = components["schemas"]["GenerationPage"];
type CreateHeaders = NonNullable<operations["create_generation"]["parameters"]["header"]>;
type ListQuery = NonNullable<paths["/api/v1/generations"]["get"]["parameters"]["query"]>;

const TERMINAL: ReadonlyArray<Generation["status"]> = ["completed", "failed", "cancelled"];

export function isTerminal(generation: Generation): boolean {
  return TERMINAL.includes(generation.status);
}

export function assetUrl(generation: Generation): string | null {
  return generation.asset?.url ?? null;
}

export function problemFields(problem: Problem): string[] {
  return (problem.errors ?? []).map((error) => `${error.field}: ${error.code}`);
}

export async function createAndWait(
  baseUrl: string,
  apiKey: string,
  request: GenerationCreate,
  idempotencyKey: string,
): Promise<Generation> {
  const documented: CreateHeaders = { "Idempotency-Key": idempotencyKey, Prefer: "wait=30" };
  const headers: Record<string, string> = {
    Authorization: `Bearer ${apiKey}`,
    "Content-Type": "application/json",
  };
  for (const [name, value] of Object.entries(documented)) {
    if (typeof value === "string") headers[name] = value;
  }
  const response = await fetch(`${baseUrl}/api/v1/generations`, {
    method: "POST",
    headers,
    body: JSON.stringify(request),
  });
  if (!response.ok) {
    const problem = (await response.json()) as Problem;
    throw new Error(`${problem.code}: ${problem.detail}`);
  }
  return (await response.json()) as Generation;
}

export function nextPage(page: Page, query: ListQuery): ListQuery | null {
  return page.next_cursor === null ? null : { ...query, cursor: page.next_cursor };
}

export const example: GenerationCreate = {
  operation_type: "text_to_video",
  provider_id: "sim",
  params: { prompt: "a cat", quality: "720p" },
  priority: 7,
};

// The types are precise, not `any`: each of these must be an error.
// @ts-expect-error: not a status
export const badStatus: Generation["status"] = "done";
// @ts-expect-error: operation_type is required
export const missingOperation: GenerationCreate = { provider_id: "sim" };
// @ts-expect-error: not an operation type
export const badOperation: GenerationCreate["operation_type"] = "text_to_sound";
