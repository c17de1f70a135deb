/** The bare reverse proxy as a process of its own: `tsx bench/harness/bare-proxy-server.ts <upstream url>`. */
import { startBareProxy } from "./bare-proxy.js";

const proxy = await startBareProxy(process.argv[2] ?? "http://127.0.0.1:1");
process.stdout.write(`bare proxy listening on ${proxy.url}\n`);
const stop = () => void proxy.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
