// Run after changing dependencies (`npm install` then `node scripts/prune-lock-optional.mjs`).
// The registry this project installs from carries only the Linux builds of some native
// packages; npm writes their other-platform optional edges without records, and `npm ci` then
// refuses the lock as out of sync. This drops optionalDependencies edges whose package has no record in the lock (platform builds the
// registry reachable here does not carry), so `npm ci` does not ask for them.
import { readFileSync, writeFileSync } from 'node:fs';
const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
let dropped = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  if (!pkg.optionalDependencies) continue;
  for (const name of Object.keys(pkg.optionalDependencies)) {
    const base = path ? `${path}/node_modules/${name}` : `node_modules/${name}`;
    if (!lock.packages[base] && !lock.packages[`node_modules/${name}`]) {
      delete pkg.optionalDependencies[name];
      dropped++;
    }
  }
}
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`dropped ${dropped} optional edges`);
