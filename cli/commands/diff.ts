/*
 * `mcp-updater diff <name> [from] [to]`: what changed in a server's MCP surface between two
 * installed versions (by default: the active version and the one waiting for approval), item by
 * item, with its class (shared/surface.ts). --json prints what GET /api/v1/servers/:name/diff answers.
 */
import type { Command } from 'commander';
import type { SurfaceChange } from '../../shared/surface.js';
import { compareSurfaces, type SurfaceComparison } from '../../shared/surfaceStore.js';
import { print, printJson } from '../format.js';
import { jsonOption, withSession } from './session.js';
import { describedAs } from './catalog.js';

const MARK: Record<SurfaceChange['change'], string> = {
  added: '+',
  removed: '-',
  description: '~',
  schema: '~',
  annotations: '~',
  other: '~',
};

function itemName(change: Pick<SurfaceChange, 'kind' | 'key'>): string {
  return change.kind === 'instructions' ? 'instructions' : `${change.kind} ${change.key}`;
}

function textLines(prefix: string, text: string | undefined): string[] {
  return text === undefined ? [] : text.split(/\r?\n/).map((line) => `      ${prefix} ${line}`.trimEnd());
}

/** The readable form: a header with both hashes, then one block per change, most severe first. */
export function renderSurfaceDiff(comparison: SurfaceComparison): string {
  const { diff, from, to } = comparison;
  const lines = [
    `${comparison.server}: MCP surface ${from?.version ?? '(nothing active)'} -> ${to.version}: ${diff.class}`,
    `  from  ${from ? `${from.version}  sha256:${from.hash}` : '(none)'}`,
    `  to    ${to.version}  sha256:${to.hash}`,
  ];
  if (diff.changes.length === 0) return `${lines.join('\n')}\n\nno changes\n`;
  lines.push('');
  const order = { breaking: 0, changed: 1, additive: 2 };
  const changes = [...diff.changes].sort((a, b) => order[a.class] - order[b.class]);
  for (const change of changes) {
    lines.push(`${MARK[change.change]} ${itemName(change)} [${change.class}]`);
    for (const detail of change.details) lines.push(`    ${detail}`);
    if (change.change === 'description') {
      lines.push(...textLines('-', change.before), ...textLines('+', change.after));
    }
  }
  const { counts } = diff;
  lines.push(
    '',
    `${diff.changes.length} change${diff.changes.length === 1 ? '' : 's'}: ${counts.breaking} breaking, ${counts.changed} changed, ${counts.additive} additive`
      + ` (${counts.added} added, ${counts.removed} removed, ${counts.modified} modified)`,
  );
  return `${lines.join('\n')}\n`;
}

export function registerDiffCommand(program: Command): void {
  program
    .command('diff')
    .description(describedAs('diff'))
    .argument('<name>', 'a server of the inventory')
    .argument('[from]', 'the version to compare from (default: the active version, or the previous one)')
    .argument('[to]', 'the version to compare to (default: the version waiting for approval, else the active one)')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      `
Classes: additive (only new items or optional parameters), changed (text the model reads, or
schema details), breaking (an item or parameter removed, a parameter required or retyped, an
annotation moved the dangerous way). surfaceChange in the inventory says which wait for approval.

Examples:
  mcp-updater diff memory                  # active version -> the one waiting for approval
  mcp-updater diff memory 1.2.0 1.3.0
  mcp-updater diff memory --json | jq '.diff.changes'
`,
    )
    .action(async (name: string, from: string | undefined, to: string | undefined, options: { json?: boolean }) => {
      await withSession(
        async (session) => {
          const comparison = await compareSurfaces(session.layout, session.state, name, { from, to });
          if (options.json) printJson(comparison);
          else print(renderSurfaceDiff(comparison));
        },
        { servers: [name] },
      );
    });
}
