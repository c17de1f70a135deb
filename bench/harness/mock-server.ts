/** The mock upstreams as a process of their own: `tsx bench/harness/mock-server.ts --latency 20 --jitter 10`. */
import { startMockUpstreams } from "../../src/mock-upstreams/server.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const latency = { baseMs: arg("latency", 20), jitterMs: arg("jitter", 10) };
const mock = await startMockUpstreams({ port: arg("port", 0), latency: { serpapi: latency, openai: latency, gmail: latency, web: latency } });
process.stdout.write(`mock upstreams listening on ${mock.url}\n`);
const stop = () => void mock.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
