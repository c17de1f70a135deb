/**
 * Schema fragments shared by routes. Identifiers reach SQL as parameters: PostgreSQL refuses a NUL
 * byte in text (SQLite stores it), so ids are printable ASCII and free text has no control characters.
 */
export const PRINTABLE_ID = "^[\\x21-\\x7e]+$";
export const NO_CONTROL_CHARACTERS = "^[^\\x00-\\x1f\\x7f]*$";
