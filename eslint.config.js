// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// The layering (README "Layout"): each folder may import only the folders below it.
//   lib  <-  sriov  <-  { device-plugin, cni }  <-  webhook  <-  sim  <-  bin
// proto/ (generated kubelet APIs) may be imported by every layer above lib and imports nothing of ours.
// sim/ (simulator and stand-ins) is imported only by bin/demo, hack/, bench/ and tests.
const OURS = [
  'lib',
  'proto',
  'sriov',
  'device-plugin',
  'cni',
  'webhook',
  'sim',
  'bin',
  'test',
  'bench',
  'hack',
];
/** @param {string} target @param {string[]} allowed @returns {{target: string, from: string[], message: string}} */
const layer = (target, allowed) => ({
  target: `./${target}`,
  from: OURS.filter((f) => f !== target && !allowed.includes(f)).map((f) => `./${f}`),
  message: `${target}/ may import only ${allowed.length ? allowed.map((a) => `${a}/`).join(', ') : 'nothing of ours'} (README "Layout")`,
});
const layering = [
  layer('lib', []),
  layer('proto', []),
  layer('sriov', ['lib']),
  layer('device-plugin', ['lib', 'proto', 'sriov']),
  layer('cni', ['lib', 'proto', 'sriov']),
  layer('webhook', ['lib', 'sriov', 'cni']),
  layer('sim', ['lib', 'proto', 'sriov', 'device-plugin', 'cni', 'webhook']),
  {
    target: './bin',
    from: ['./sim', './test', './bench', './hack'],
    except: [],
    message:
      'bin/ composition roots do not import the simulator or test code; only bin/demo may (README "Layout")',
  },
];

export default tseslint.config(
  {
    // sriov/lint-probe-*: the throw-away files test/lint-layering.test.ts lints (with ignore off).
    ignores: [
      'dist/**',
      'node_modules/**',
      'proto/gen/**',
      'coverage/**',
      '**/*.js',
      '**/*.cjs',
      '**/*.mjs',
      'sriov/lint-probe-*/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      // import-x must parse our .ts files (to follow their imports) and resolve `./x.js` to `x.ts`.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'describe', property: 'only', message: 'Do not commit .only' },
        { object: 'it', property: 'only', message: 'Do not commit .only' },
        { object: 'test', property: 'only', message: 'Do not commit .only' },
      ],
    },
  },
  {
    // Production code: the layering, and limits that keep functions readable (ceilings lowered as
    // the largest functions are split; see README "Layout").
    files: ['{lib,proto,sriov,device-plugin,cni,webhook,sim,bin}/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.contract.ts'],
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layering }],
      'max-lines-per-function': ['error', { max: 160, skipBlankLines: true, skipComments: true }],
      complexity: ['error', 35],
    },
  },
  {
    files: ['bin/demo/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layering.filter((z) => z.target !== './bin') }],
    },
  },
  {
    files: ['**/*.test.ts', '**/*.contract.ts', 'test/**/*.ts', 'bench/**/*.ts', 'hack/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
