import { createHash } from "node:crypto";
import { Ajv, type ErrorObject } from "ajv";
import { parse as parseYaml } from "yaml";
import { GatewayError } from "../errors/index.js";
import { canonicalJson } from "../util/canonical-json.js";
import { SCOPE_PATTERN } from "../identity/token-claims.js";
import { checkUrlShape } from "../net/address-policy.js";
import { compileGuardPattern } from "./guards.js";
import { APPROVAL_TTL_MAX_SECONDS, type PolicyDocument } from "./types.js";
import { isValidTimeZone, parseHours } from "./windows.js";

const SCALAR = { type: ["string", "number", "boolean"] } as const;
const GUARD = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    equals: SCALAR,
    oneOf: { type: "array", items: SCALAR, minItems: 1, maxItems: 1000 },
    notOneOf: { type: "array", items: SCALAR, minItems: 1, maxItems: 1000 },
    pattern: { type: "string", maxLength: 500 },
    maxLength: { type: "integer", minimum: 0 },
    min: { type: "number" },
    max: { type: "number" },
    maxItems: { type: "integer", minimum: 0 },
    optional: { type: "boolean" },
  },
} as const;
const TIME_ZONE = { type: "string", minLength: 1, maxLength: 64 } as const;

const policySchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "subject", "rules"],
  properties: {
    name: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$" },
    description: { type: "string", maxLength: 1000 },
    enabled: { type: "boolean" },
    claimableIntents: { type: "array", maxItems: 50, uniqueItems: true, items: { type: "string", minLength: 1, maxLength: 128 } },
    subject: {
      type: "object",
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
      properties: {
        agentId: { type: "string", minLength: 1, maxLength: 64 },
        role: { type: "string", pattern: "^[a-z0-9][a-z0-9_-]{0,63}$" },
        all: { const: true },
      },
    },
    rules: {
      type: "array",
      minItems: 1,
      maxItems: 1000,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["effect", "scopes"],
        properties: {
          id: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$" },
          effect: { enum: ["allow", "deny"] },
          description: { type: "string", maxLength: 500 },
          scopes: { type: "array", minItems: 1, maxItems: 200, items: { type: "string", maxLength: 130 } },
          intents: { type: "array", minItems: 1, maxItems: 50, items: { type: "string", minLength: 1, maxLength: 128 } },
          guards: {
            type: "object",
            minProperties: 1,
            maxProperties: 50,
            propertyNames: { pattern: "^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$", maxLength: 128 },
            additionalProperties: GUARD,
          },
          quota: {
            type: "object",
            additionalProperties: false,
            required: ["limit", "per"],
            properties: {
              limit: { type: "integer", minimum: 1, maximum: 1_000_000_000 },
              per: { enum: ["minute", "hour", "day"] },
              timeZone: TIME_ZONE,
              shared: { type: "boolean" },
              countFailures: { type: "boolean" },
              unit: { enum: ["calls", "tokens"] },
            },
          },
          schedule: {
            type: "object",
            additionalProperties: false,
            minProperties: 1,
            properties: {
              days: { type: "array", minItems: 1, maxItems: 7, uniqueItems: true, items: { enum: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] } },
              hours: { type: "string", pattern: "^\\d{2}:\\d{2}-\\d{2}:\\d{2}$" },
              timeZone: TIME_ZONE,
            },
          },
          requireApproval: {
            type: "object",
            additionalProperties: false,
            properties: {
              ttlSeconds: { type: "integer", minimum: 1, maximum: APPROVAL_TTL_MAX_SECONDS },
              approvers: { type: "array", maxItems: 50, items: { type: "string", minLength: 1, maxLength: 128 } },
              webhookUrl: { type: "string", minLength: 8, maxLength: 2048, pattern: "^https?://" },
              webhookFormat: { enum: ["json", "slack"] },
            },
          },
          rateLimit: {
            type: "object",
            additionalProperties: false,
            required: ["perSecond"],
            properties: {
              perSecond: { type: "number", exclusiveMinimum: 0, maximum: 1_000_000 },
              burst: { type: "integer", minimum: 1, maximum: 10_000_000 },
              per: { enum: ["agent", "agentTool", "role", "all"] },
            },
          },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: false });
const validate = ajv.compile(policySchema);

/** `/rules/3/quota/per` → `rules[3].quota.per` */
function pathOf(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc === "" ? part : `${acc}.${part}`), "");
}

function describe(e: ErrorObject): { field: string; message: string } {
  let field = pathOf(e.instancePath);
  if (e.keyword === "additionalProperties") field = `${field ? `${field}.` : ""}${String(e.params.additionalProperty)}`;
  if (e.keyword === "required") field = `${field ? `${field}.` : ""}${String(e.params.missingProperty)}`;
  const message =
    e.keyword === "additionalProperties"
      ? "is not a known field"
      : e.keyword === "required"
        ? "is required"
        : e.keyword === "enum"
          ? `must be one of ${(e.params.allowedValues as unknown[]).join(", ")}`
          : (e.message ?? "is invalid");
  return { field: field || "(document)", message };
}

function invalid(field: string, message: string): GatewayError {
  return new GatewayError("policy_invalid", `invalid policy: ${field} ${message}`, { details: { field } });
}

/**
 * Parses (JSON text, YAML text or an already-parsed value) and validates a policy document.
 * @throws GatewayError policy_invalid naming the field and why
 */
export function parsePolicy(input: unknown, format: "json" | "yaml" = "json"): PolicyDocument {
  let doc = input;
  if (typeof input === "string") {
    try {
      doc = format === "yaml" ? parseYaml(input, { maxAliasCount: 100 }) : JSON.parse(input);
    } catch (err) {
      throw invalid("(document)", `is not valid ${format.toUpperCase()}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  if (!validate(doc)) {
    const { field, message } = describe(validate.errors![0]!);
    throw invalid(field, message);
  }
  const policy = doc as PolicyDocument;
  policy.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    rule.scopes.forEach((scope, j) => {
      if (scope !== "*" && !SCOPE_PATTERN.test(scope)) throw invalid(`${at}.scopes[${j}]`, `"${scope}" is not a scope (tool:action, tool:*, or *)`);
    });
    if (rule.effect === "deny" && (rule.quota !== undefined || rule.rateLimit !== undefined))
      throw invalid(`${at}.effect`, "a deny rule cannot carry a quota or a rate limit");
    if (rule.effect === "deny" && rule.requireApproval !== undefined)
      throw invalid(`${at}.requireApproval`, "is for allow rules (a deny rule refuses; nothing can approve it)");
    for (const [path, guard] of Object.entries(rule.guards ?? {})) {
      if (guard.pattern !== undefined) {
        try {
          compileGuardPattern(guard.pattern);
        } catch (err) {
          throw invalid(
            `${at}.guards.${path}.pattern`,
            `is not a regular expression the gateway can match in linear time (RE2 syntax: no backreferences or lookaround): ${(err as Error).message}`,
          );
        }
      }
      if (guard.min !== undefined && guard.max !== undefined && guard.min > guard.max) throw invalid(`${at}.guards.${path}.min`, "is greater than max");
    }
    if (rule.quota?.timeZone !== undefined && !isValidTimeZone(rule.quota.timeZone))
      throw invalid(`${at}.quota.timeZone`, `"${rule.quota.timeZone}" is not an IANA time zone`);
    if (rule.schedule?.timeZone !== undefined && !isValidTimeZone(rule.schedule.timeZone))
      throw invalid(`${at}.schedule.timeZone`, `"${rule.schedule.timeZone}" is not an IANA time zone`);
    if (rule.schedule?.hours !== undefined && parseHours(rule.schedule.hours) === undefined)
      throw invalid(`${at}.schedule.hours`, `"${rule.schedule.hours}" is not HH:MM-HH:MM with distinct times`);
    if (rule.requireApproval?.webhookUrl !== undefined) {
      try {
        checkUrlShape(rule.requireApproval.webhookUrl);
      } catch (err) {
        throw invalid(`${at}.requireApproval.webhookUrl`, `is refused: ${(err as Error).message}`);
      }
    }
    if (rule.rateLimit?.burst !== undefined && rule.rateLimit.burst < 1) throw invalid(`${at}.rateLimit.burst`, "must be at least 1");
  });
  return policy;
}

/** A stable hash of a policy's content (key order does not matter). */
export function policyHash(doc: PolicyDocument): string {
  return createHash("sha256").update(canonicalJson(doc)).digest("hex").slice(0, 32);
}
