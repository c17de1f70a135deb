export { startGatewayProcess, type ChildService as GatewayProcess } from "../../bench/harness/processes.js";
