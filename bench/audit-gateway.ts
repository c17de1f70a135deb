/**
 * A gateway process for `npm run bench:audit`, with the audit writer chosen on the command line:
 * `durable` (the gateway as shipped: each answer waits for its group commit), `batched` (as before:
 * answered at once, records inserted on the main thread every 250 ms, lost on a crash) or `off`
 * (records discarded). Everything else is the same gateway, configured from the environment.
 */
import { loadConfig } from "../src/config/index.js";
import { createGateway, type GatewayDeps } from "../src/gateway.js";
import type { AuditChainHead, AuditRecord, AuditWriter, Store } from "../src/store/index.js";

/** The old behaviour: acknowledge at once, write the buffer every 250 ms with synchronous SQLite work on the event loop. */
function batchedWriter(store: Store): AuditWriter {
  let buffer: AuditRecord[] = [];
  let head: AuditChainHead | undefined;
  const flush = async () => {
    if (buffer.length === 0 || head === undefined) return;
    const batch = buffer;
    buffer = [];
    await store.insertAuditRecords(batch, head).catch(() => undefined);
  };
  const timer = setInterval(() => void flush(), 250);
  timer.unref();
  return {
    async write(records, h) {
      buffer.push(...records);
      head = h;
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

const variant = process.argv[2] ?? "durable";
const deps: GatewayDeps =
  variant === "off"
    ? { auditWriter: () => ({ write: async () => undefined, close: async () => undefined }) }
    : variant === "batched"
      ? { auditWriter: batchedWriter }
      : {};
const gateway = await createGateway(loadConfig(process.env), deps);
const url = await gateway.listen();
process.stdout.write(`audit bench gateway (${variant}) listening on ${url}\n`);
const stop = () => void gateway.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
