import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { stage, type CallOutcome, type Next, type Stage, type ToolCall } from "../proxy/call.js";
import { modelUsageOf } from "../proxy/stages.js";

const w3c = new W3CTraceContextPropagator();

/** The context a W3C `traceparent` names (the root context when there is none). */
export function contextOf(traceparent: string | undefined): Context {
  return traceparent === undefined ? ROOT_CONTEXT : w3c.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter);
}

/** The W3C `traceparent` of a span, as sent to the next hop. */
export function traceparentOf(span: Span): string | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  return carrier.traceparent;
}

/**
 * Wraps every stage of the road in a span: the first (observe) is the call's span, continuing the
 * client's `traceparent`; each stage's span is the child of the one around it, so the onion shows as
 * it runs, and a stage that calls `next` more than once (retry) gets one child per call, numbered.
 * The innermost span's `traceparent` is what the adapter sends upstream.
 */
export function traceStages(stages: readonly Stage[], tracer: Tracer): Stage[] {
  // Which attempt a call object belongs to: the retry stage's n-th call of `next` is attempt n, and
  // every stage inside it (breaker, attempt) carries that number on its span.
  const attemptOf = new WeakMap<ToolCall, number>();
  return stages.map((s, index) =>
    stage(s.name, async (call, next) => {
      const first = index === 0;
      const attributes: Attributes = first ? callAttributes(call) : { "gateway.stage": s.name };
      const attemptNo = attemptOf.get(call);
      if (attemptNo !== undefined) attributes["gateway.attempt"] = attemptNo;
      const span = tracer.startSpan(
        first ? `${call.door} ${call.tool}:${call.action}` : s.name === "attempt" ? `attempt ${call.tool}:${call.action}` : `stage ${s.name}`,
        { kind: first ? SpanKind.SERVER : s.name === "attempt" ? SpanKind.CLIENT : SpanKind.INTERNAL, attributes },
        contextOf(call.traceparent),
      );
      const here = traceparentOf(span);
      let calls = 0;
      const traced: Next = (inner) => {
        const forwarded: ToolCall = here === undefined ? { ...inner } : { ...inner, traceparent: here };
        calls++;
        const n = s.name === "retry" ? calls : attemptNo;
        if (n !== undefined) attemptOf.set(forwarded, n);
        return next(forwarded);
      };
      try {
        const outcome = await s.run(call, traced);
        describeOutcome(span, outcome, first ? call : undefined);
        return outcome;
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    }),
  );
}

function callAttributes(call: ToolCall): Attributes {
  const a: Attributes = {
    "gateway.door": call.door,
    "gateway.tool": call.tool,
    "gateway.action": call.action,
    "gateway.correlation_id": call.correlationId,
    "gateway.phase": call.phase,
  };
  // GenAI semantic conventions for model calls.
  if (call.tool === "openai") {
    a["gen_ai.system"] = "openai";
    a["gen_ai.operation.name"] = call.action;
    if (typeof call.params.model === "string") a["gen_ai.request.model"] = call.params.model;
    if (typeof call.params.max_tokens === "number") a["gen_ai.request.max_tokens"] = call.params.max_tokens;
  }
  return a;
}

function describeOutcome(span: Span, outcome: CallOutcome, call: ToolCall | undefined): void {
  span.setAttribute("gateway.outcome", outcome.kind);
  if (outcome.principal !== undefined && call !== undefined) span.setAttribute("gateway.agent_id", outcome.principal.agentId);
  if (outcome.kind === "answered") {
    const { execution } = outcome;
    span.setAttribute("http.response.status_code", execution.reply.status);
    if (call === undefined) return;
    span.setAttributes({ "gateway.cache": execution.cache, "gateway.attempts": execution.attempts });
    if (call.tool === "openai") {
      const model = (execution.reply.body as { model?: unknown } | null)?.model;
      if (typeof model === "string") span.setAttribute("gen_ai.response.model", model);
      const usage = modelUsageOf(execution.reply.body);
      if (usage !== undefined) span.setAttributes({ "gen_ai.usage.input_tokens": usage.input, "gen_ai.usage.output_tokens": usage.output });
    }
    return;
  }
  if (outcome.kind === "queued") return;
  if (outcome.kind === "held") {
    span.setAttributes({ "gateway.approval_id": outcome.approval.id, "http.response.status_code": 202 });
    return;
  }
  span.setAttributes({ "gateway.error_code": outcome.error.code, "http.response.status_code": outcome.error.status });
  span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.code });
}
