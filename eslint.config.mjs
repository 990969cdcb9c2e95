// ESLint for the whole repository (npm run lint; test/lint.test.ts holds it, in the fast loop):
// eslint's and typescript-eslint's recommended rules, without type information. The type-aware
// rules (no-floating-promises, no-misused-promises) were measured: they build the whole TypeScript
// program and take ESLint from 7 s to 16 s of CPU, which would put the lint out of the fast loop,
// for one finding in the tree (the fuzzer's main); promises left unawaited on purpose are marked
// with `void` already. Formatting is Prettier's (.prettierrc.json): no rule here is about layout.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: [
      'out/',
      'dist/',
      'node_modules/',
      '.cache/',
      'grammars/',
      // C fixtures, committed objects and the kernel lab's measurements.
      'test/fixtures/',
      'test/fuzz/corpus/',
      // Written by scripts/gen-helper-names.mjs.
      'server/src/object/helperNames.ts',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // An unused parameter kept for a callback's or a command's signature is named `_io`.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The markdown escaper and its hostile-input test match control characters on purpose.
    files: ['server/src/common/markdown.ts', 'test/lsp/hostileMarkup.test.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    // Lazy require() keeps `check` from loading the language server (cli/main.ts), and an optional
    // dependency is tried with require() so that its absence can be reported (hostileMarkup.test.ts).
    files: ['server/src/cli/main.ts', 'test/lsp/hostileMarkup.test.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The command's entry is CommonJS, as package.json's "bin" runs it with no build step of its own.
    files: ['bin/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The editor tests pass functions to the browser (page.evaluate), which run in the page.
    files: ['test/editors/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
