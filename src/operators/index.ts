export { OperatorService, BOOTSTRAP_OPERATOR, sameSecret } from "./service.js";
export type { OperatorRecord, OperatorIdentity, OperatorStatus, ConsoleSession, SessionSummary } from "./service.js";
export { OPERATOR_ROLES, roleAllows, isOperatorRole } from "./roles.js";
export type { OperatorRole } from "./roles.js";
export { SignInThrottle } from "./sign-in-throttle.js";
