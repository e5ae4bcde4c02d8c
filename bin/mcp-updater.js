#!/usr/bin/env node
// The `mcp-updater` command runs the compiled JavaScript in dist/ (tsx stays a dev tool). It first
// makes sure dist/ was built from the sources as they are now, building it on the first start after
// `npm install` or an edit, so an edited source never runs stale.
import { BuildError, ensureFreshBuild } from './build.js';

try {
  await ensureFreshBuild();
} catch (error) {
  if (!(error instanceof BuildError)) throw error;
  process.stderr.write(`mcp-updater: ${error.message}\n`);
  process.exit(1);
}
await import('../dist/cli/main.js');
