export { openStore, SqlStore } from "./store.js";
export type {
  Store,
  MetaStore,
  AgentStore,
  TokenStore,
  AssertionStore,
  SigningKeyStore,
  PolicyStore,
  CredentialStore,
  AuditStore,
  StoredPolicy,
  StoredPolicyVersion,
  StoreOptions,
  AgentRecord,
  AgentStatus,
  KeyAlgorithm,
  TokenRecord,
  SigningKeyRecord,
  Page,
  AgentPage,
  CredentialVersionRecord,
  ActiveCredentialRecord,
  AuditRecord,
  AuditUsage,
  AuditQuery,
  AuditChainHead,
  AuditChainFields,
  AuditWriter,
} from "./store.js";
export { UniqueViolation, openSqliteDriver, openPostgresDriver } from "./sql-driver.js";
export type { SqlDriver, SqlValue, Row } from "./sql-driver.js";
export { migrate, migrations } from "./migrations.js";
export type { Migration } from "./migrations.js";
