/** What an operator may do: `viewer` reads everything, `approver` also decides approvals, `admin` does everything. */
export type OperatorRole = "viewer" | "approver" | "admin";

export const OPERATOR_ROLES: readonly OperatorRole[] = ["viewer", "approver", "admin"];

const RANK: Record<OperatorRole, number> = { viewer: 1, approver: 2, admin: 3 };

/** Whether an operator holding `held` may use a route that needs `needed` (roles are nested). */
export function roleAllows(held: OperatorRole, needed: OperatorRole): boolean {
  return RANK[held] >= RANK[needed];
}

export function isOperatorRole(value: unknown): value is OperatorRole {
  return typeof value === "string" && (OPERATOR_ROLES as readonly string[]).includes(value);
}
