/**
 * The gateway's own client is the published SDK (packages/sdk): the CLI, the tests and the
 * benchmarks use exactly what users install.
 */
export * from "../../packages/sdk/src/index.js";
