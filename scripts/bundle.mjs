// Bundles the extension for the .vsix: dist/client.js (the VS Code side), dist/server.js (the
// language server) and dist/estimateWorker.js (its source-estimate thread), all CommonJS for
// Node, with `vscode` left to the editor. dist/cli.js is the command line's `check` path in one
// file, which bin/bpf-stack-lens.js loads instead of out/ when it is at least as new as
// out/server/src/cli/main.js: resolving and reading some forty small modules is a noticeable part
// of a whole `check` run. The other commands stay in out/, loaded on demand as before, so the
// bundle holds only what `check` needs. web-tree-sitter is aliased to its CommonJS build because
// its ES module build breaks inside a CJS bundle (createRequire(undefined) at Parser.init). The
// two .wasm files go next to the bundle, where server/src/source/parser.ts looks for the runtime
// once node_modules is gone.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // parser.ts's last-resort require.resolve of the runtime's and the grammar's wasm stay run-time lookups.
  external: ['vscode', 'web-tree-sitter/web-tree-sitter.wasm', 'tree-sitter-c/tree-sitter-c.wasm'],
  sourcemap: true,
  logLevel: 'warning',
  plugins: [
    {
      // An exact-name alias: esbuild's own `alias` also rewrites subpaths such as the wasm above.
      name: 'web-tree-sitter-cjs',
      setup(pluginBuild) {
        pluginBuild.onResolve({ filter: /^web-tree-sitter$/ }, () => ({ path: join(root, 'node_modules', 'web-tree-sitter', 'web-tree-sitter.cjs') }));
      },
    },
  ],
};

/** The commands other than `check`, left as run-time requires of their compiled modules in out/. */
const cliOnDemand = {
  name: 'cli-commands-from-out',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\/(dump|estimate|types)Command$|^\.\.\/lsp\/lspCommand$/ }, (args) => {
      if (!args.importer.endsWith(join('server', 'src', 'cli', 'main.ts'))) return undefined;
      const module = args.path.startsWith('../lsp/') ? `lsp/${args.path.slice('../lsp/'.length)}` : `cli/${args.path.slice(2)}`;
      return { path: `../out/server/src/${module}.js`, external: true };
    });
  },
};

await Promise.all([
  build({ ...common, entryPoints: [join(root, 'server', 'src', 'cli', 'main.ts')], outfile: join(dist, 'cli.js'), plugins: [...common.plugins, cliOnDemand] }),
  build({ ...common, entryPoints: [join(root, 'client', 'src', 'extension.ts')], outfile: join(dist, 'client.js') }),
  build({ ...common, entryPoints: [join(root, 'server', 'src', 'lsp', 'main.ts')], outfile: join(dist, 'server.js') }),
  // The source estimate's worker thread, which the server starts from beside itself.
  build({ ...common, entryPoints: [join(root, 'server', 'src', 'lsp', 'estimateWorker.ts')], outfile: join(dist, 'estimateWorker.js') }),
]);

// The C grammar is tree-sitter-c's own build, not ours, so it is not committed: it is copied from the
// package npm installed into grammars/, where parser.ts and the .vsix take it from.
copyFileSync(join(root, 'node_modules', 'tree-sitter-c', 'tree-sitter-c.wasm'), join(root, 'grammars', 'tree-sitter-c.wasm'));
for (const wasm of [join(root, 'grammars', 'tree-sitter-c.wasm'), join(root, 'node_modules', 'web-tree-sitter', 'web-tree-sitter.wasm')]) {
  copyFileSync(wasm, join(dist, wasm.split(/[\\/]/).pop()));
}
console.log('bundled dist/client.js, dist/server.js, dist/estimateWorker.js, dist/cli.js and the tree-sitter wasm files');
