#!/usr/bin/env node
// The `mcp-updater` command. Sources are TypeScript, loaded through tsx (a runtime dependency),
// so `npm install && npm start` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
