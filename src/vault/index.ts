export { seal, open } from "./envelope.js";
export type { SealedEnvelope } from "./envelope.js";
