// Builds the clients after `nest build` (which empties dist/ first):
//   sdk/dist/index.js, index.d.ts  @parley/client (ES module; its types bundled with the server's
//                                   wire types inlined, so the package stands alone)
//   dist/cli/chat.js               the terminal client (`npm run chat`)
//   dist/public/                   the web client the server serves at `/`
// esbuild bundles (milliseconds); dts-bundle-generator writes the one declaration file.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const at = (...p) => join(root, ...p);
const only = process.argv[2]; // sdk | cli | web: one part (development)

if (!only || only === 'sdk') {
  rmSync(at('sdk/dist'), { recursive: true, force: true });
  await build({
    entryPoints: [at('sdk/src/index.ts')],
    outfile: at('sdk/dist/index.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
  });
  const bin = join(dirname(createRequire(import.meta.url).resolve('dts-bundle-generator/package.json')), 'dist/bin/dts-bundle-generator.js');
  execFileSync(process.execPath, [bin, '--silent', '--project', at('sdk/tsconfig.json'), '-o', at('sdk/dist/index.d.ts'), at('sdk/src/index.ts')], { stdio: 'inherit' });
}

if (!only || only === 'cli') {
  await build({
    entryPoints: [at('clients/terminal/chat.ts')],
    outfile: at('dist/cli/chat.js'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: ['ws'],
    sourcemap: true,
    logLevel: 'warning',
  });
}

if (!only || only === 'web') {
  rmSync(at('dist/public'), { recursive: true, force: true });
  mkdirSync(at('dist/public'), { recursive: true });
  await build({
    entryPoints: [at('clients/web/main.tsx')],
    outfile: at('dist/public/app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
  cpSync(at('clients/web/static'), at('dist/public'), { recursive: true });
}
