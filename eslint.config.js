// ESLint flat config: typescript-eslint's strict, type-aware rules over every TypeScript file in the repo.
// Formatting is Prettier's job (`npm run format`); no stylistic rules here.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/", "coverage/", "reports/", "test-artifacts/", "data/", "docs/reports/", "**/node_modules/"] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // Each file is checked with the tsconfig.json nearest to it (root, console/, packages/sdk/);
        // the few config files outside every tsconfig get a default project.
        projectService: { allowDefaultProject: ["*.config.ts", "*.config.js", "console/vite.config.ts"] },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // Numbers print the same in every locale and are what most messages and keys interpolate.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // noUncheckedIndexedAccess is on: `xs[i]!` after a length check is the honest way to say "present".
      "@typescript-eslint/no-non-null-assertion": "off",
      // `() => doSomething()` as a callback is the codebase's idiom; returning void from it confuses nobody.
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
      // `{}` is `unknown` narrowed by a null check, which the rule already lets through; the `String(x)` calls on such values mean it.
      "@typescript-eslint/no-base-to-string": ["error", { ignoredTypeNames: ["Error", "RegExp", "URL", "URLSearchParams", "{}"] }],
      // The code checks at run time what its types cannot promise (JSON.stringify(undefined), flags set by callbacks across an await,
      // parsed envelopes, browser APIs missing outside secure contexts): the rule calls those checks unnecessary, and removing them changes behaviour.
      "@typescript-eslint/no-unnecessary-condition": "off",
      // A leading underscore marks a binding kept on purpose (`const { secret: _drop, ...rest } = x`).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
      // `async` without `await` is deliberate: it implements Promise-returning interfaces and Fastify handlers, and turns a throw into a rejection.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Tests read the response bodies they assert on as `any`: expect() is the type check there.
    files: ["test/**"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/restrict-plus-operands": ["error", { allowAny: true }],
      // `.catch((e) => e)` hands the error to expect(), which is where its shape is checked.
      "@typescript-eslint/use-unknown-in-catch-callback-variable": "off",
    },
  },
  {
    files: ["console/src/**"],
    languageOptions: { globals: { ...globals.browser } },
    // Async event handlers are how the console talks to the API; Preact ignores what they return and each reports its own errors.
    rules: { "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { attributes: false } }] },
  },
  {
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
