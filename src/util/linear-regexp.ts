import type { CodeOptions } from "ajv";
import { RE2JS } from "re2js";

type RegExpEngine = NonNullable<CodeOptions["regExp"]>;

/**
 * Largest compiled RE2 program a pattern may have. Matching is linear in the input but also in the
 * program when RE2 falls back from its DFA to the NFA (`(a|b)*a[ab]{200}` does): counted repetition
 * such as `{1000}` would make each character cost a thousand steps. Ordinary patterns are far below.
 */
export const MAX_REGEXP_PROGRAM_SIZE = 300;

/**
 * Compiles a pattern an admin wrote (policy guards, generic tool parameter schemas) with RE2 (re2js,
 * pure JavaScript): matching takes time linear in the input, so no pattern lets an agent pin the event
 * loop with a crafted value. RE2 refuses what cannot run in linear time (backreferences, lookaround).
 * @throws Error when the pattern is not RE2 syntax or compiles to more than MAX_REGEXP_PROGRAM_SIZE instructions
 */
export function compileLinearRegExp(pattern: string): RE2JS {
  const compiled = RE2JS.compile(pattern);
  if (compiled.programSize() > MAX_REGEXP_PROGRAM_SIZE) {
    throw new Error(
      `the pattern compiles to ${compiled.programSize()} RE2 instructions; at most ${MAX_REGEXP_PROGRAM_SIZE} are allowed (large counted repetitions such as {1000} cost that much per character)`,
    );
  }
  return compiled;
}

/** Ajv's `code.regExp`: JSON Schema `pattern` keywords run on RE2 instead of JavaScript's backtracking RegExp. */
export const linearRegExpEngine: RegExpEngine = Object.assign(
  (pattern: string, flags: string) => {
    const compiled = compileLinearRegExp(pattern);
    // Ajv shares compiled patterns by their toString(): it must name the pattern, as RegExp's does.
    return { test: (text: string) => compiled.test(text), toString: () => `/${pattern}/${flags}` };
  },
  { code: "re2js" },
);
