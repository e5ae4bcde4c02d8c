#!/usr/bin/env node
// The `mcp-updater` command runs the compiled JavaScript in dist/ (tsx stays a dev tool). It first
// makes sure dist/ was built from the sources as they are now, building it on the first start after
// `npm install` or an edit, so an edited source never runs stale.
import v8 from 'node:v8';
import { BuildError, bundleIsCurrent, ensureFreshBuild } from './build.js';

const command = process.argv.slice(2).find((arg) => !arg.startsWith('-'));

// Every command but `start` lives for seconds: V8's optimising compiler and a young generation
// that grows from 1 to 16 MB cost such a process more memory than they save time (`servers`: peak
// RSS 98 -> 75 MB, README "Benchmarks"). Such a process runs most regular expressions once, and
// V8 first interprets a new one: checking REDIS_URL and API_BASE_URL against joi's URI pattern
// took 45-130 ms interpreted, 8-40 ms compiled to machine code straight away (same loaded 2-core
// machine, 12 runs each). The service keeps V8's defaults.
if (command !== 'start') {
  v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--no-regexp-tier-up');
}

try {
  await ensureFreshBuild();
} catch (error) {
  if (!(error instanceof BuildError)) throw error;
  process.stderr.write(`mcp-updater: ${error.message}\n`);
  process.exit(1);
}
// The service runs dist/ module by module; the short-lived commands run the bundle of the same
// build when it matches node_modules (bin/build.js, bundleCli).
if (command !== 'start' && bundleIsCurrent()) await import('../dist/cli-bundle/main.js');
else await import('../dist/cli/main.js');
