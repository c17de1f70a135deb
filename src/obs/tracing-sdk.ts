import type { Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type SpanExporter } from "@opentelemetry/sdk-trace";
import type { TracingConfig } from "../config/index.js";

// The OpenTelemetry SDK and exporter, apart from the road's tracing (tracing.ts): loaded only when
// tracing is configured (~7 MB of RSS at start otherwise).

/** The tracer and how to flush it; absent when tracing is off (then nothing is wrapped: it costs nothing). */
export interface Tracing {
  readonly tracer: Tracer;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** OTLP/HTTP export as the standard `OTEL_*` variables say (see loadConfig); `exporter` replaces it in tests. */
export function createTracing(config: TracingConfig, version: string, exporter?: SpanExporter): Tracing {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": config.serviceName, "service.version": version }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    // Bounded: a receiver that is down costs at most maxQueueSize spans of memory, then spans are dropped.
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: exporter ?? new OTLPTraceExporter({ url: config.endpoint, headers: config.headers }),
        scheduledDelayMillis: config.exportDelayMs,
        maxQueueSize: 8192,
      }),
    ],
  });
  return { tracer: provider.getTracer("4runr-gateway", version), shutdown: () => provider.shutdown() };
}
