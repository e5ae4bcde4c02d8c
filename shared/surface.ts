/*
 * A server's MCP surface: everything it tells a model (tools, prompts, resources, resource
 * templates, instructions), recorded at the smoke test as canonical JSON with a sha256 per item
 * and for the whole, and the pure comparison of two surfaces behind the surface gate
 * (docs/ARCHITECTURE.md "Surface gate"). A release that rewrites a tool description can instruct
 * an agent to do harm, so a text change is a change even when the code "works".
 *
 * Classes, from least to most severe (a diff has the class of its most severe change):
 *   unchanged  every item hashes the same
 *   additive   only new items (tool, prompt, resource, template) or new optional parameters
 *   changed    text the model reads changed (title, description, instructions, parameter
 *              descriptions), or other schema details, or an annotation moved the safe way
 *   breaking   an item was removed, a parameter became required or changed type or was removed,
 *              or an annotation moved the dangerous way (readOnlyHint true -> false,
 *              destructiveHint false -> true, openWorldHint false -> true)
 */
import crypto from 'node:crypto';
import stringify from 'safe-stable-stringify';

export const SURFACE_CLASSES = ['unchanged', 'additive', 'changed', 'breaking'] as const;
export type SurfaceClass = (typeof SURFACE_CLASSES)[number];
/** The classes a gate can hold back (unchanged never waits for the surface). */
export type GatedClass = Exclude<SurfaceClass, 'unchanged'>;
export type SurfaceGateAction = 'auto' | 'approve';
export type SurfaceChangeSettings = Record<GatedClass, SurfaceGateAction>;
export const DEFAULT_SURFACE_CHANGE: SurfaceChangeSettings = { additive: 'auto', changed: 'approve', breaking: 'approve' };

export const SURFACE_KINDS = ['tool', 'prompt', 'resource', 'resourceTemplate', 'instructions'] as const;
export type SurfaceKind = (typeof SURFACE_KINDS)[number];

type Json = unknown;
type JsonObject = Record<string, Json>;

/** What the smoke test listed, before it is made canonical (the SDK's objects). */
export interface RawSurface {
  tools: JsonObject[];
  prompts: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
  instructions?: string;
}

export interface SurfaceItem {
  kind: SurfaceKind;
  /** Tool and prompt name, resource URI, template URI template; "instructions" for the instructions. */
  key: string;
  /** sha256 (hex) of the canonical JSON of `value`. */
  hash: string;
  value: JsonObject;
}

/** `versions/<v>/.mcp-updater/surface.json`. */
export interface SurfaceRecord {
  format: 1;
  /** sha256 (hex) of the canonical JSON of every item's kind, key and hash, in key order. */
  hash: string;
  items: SurfaceItem[];
}

/** The fields of each kind that reach a model; anything else (_meta, icons) is left out. */
const FIELDS: Record<Exclude<SurfaceKind, 'instructions'>, { key: string; fields: string[] }> = {
  tool: { key: 'name', fields: ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] },
  prompt: { key: 'name', fields: ['name', 'title', 'description', 'arguments'] },
  resource: { key: 'uri', fields: ['uri', 'name', 'title', 'description', 'mimeType'] },
  resourceTemplate: { key: 'uriTemplate', fields: ['uriTemplate', 'name', 'title', 'description', 'mimeType'] },
};

/** Canonical JSON: keys sorted at every depth, no whitespace. */
export function canonicalJson(value: Json): string {
  return stringify(value) ?? 'null';
}

export function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

function pick(source: JsonObject, fields: string[]): JsonObject {
  const result: JsonObject = {};
  for (const field of fields) if (source[field] !== undefined) result[field] = source[field];
  return result;
}

function item(kind: SurfaceKind, key: string, value: JsonObject): SurfaceItem {
  return { kind, key, hash: sha256(canonicalJson(value)), value };
}

/** Make the listed surface canonical: known fields only, items in (kind, key) order, hashed. */
export function buildSurfaceRecord(raw: RawSurface): SurfaceRecord {
  const items: SurfaceItem[] = [];
  const lists: Array<[Exclude<SurfaceKind, 'instructions'>, JsonObject[]]> = [
    ['tool', raw.tools],
    ['prompt', raw.prompts],
    ['resource', raw.resources],
    ['resourceTemplate', raw.resourceTemplates],
  ];
  for (const [kind, list] of lists) {
    const { key, fields } = FIELDS[kind];
    for (const entry of list) items.push(item(kind, String(entry[key]), pick(entry, fields)));
  }
  if (raw.instructions !== undefined && raw.instructions !== '')
    items.push(item('instructions', 'instructions', { text: raw.instructions }));
  items.sort(compareItems);
  return { format: 1, hash: sha256(canonicalJson(items.map(({ kind, key, hash }) => ({ kind, key, hash })))), items };
}

function compareItems(a: Pick<SurfaceItem, 'kind' | 'key'>, b: Pick<SurfaceItem, 'kind' | 'key'>): number {
  const byKind = SURFACE_KINDS.indexOf(a.kind) - SURFACE_KINDS.indexOf(b.kind);
  if (byKind !== 0) return byKind;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Diff

export type ChangeKind = 'added' | 'removed' | 'description' | 'schema' | 'annotations' | 'other';

export interface SurfaceChange {
  kind: SurfaceKind;
  key: string;
  change: ChangeKind;
  class: GatedClass;
  /** What changed, one line each ("required parameter added: path", "readOnlyHint true -> false"). */
  details: string[];
  /** Descriptions (or instructions) before and after, when they changed. */
  before?: string;
  after?: string;
}

export interface SurfaceDiff {
  class: SurfaceClass;
  fromHash?: string;
  toHash: string;
  changes: SurfaceChange[];
  counts: Record<GatedClass, number> & { added: number; removed: number; modified: number };
}

const RANK: Record<SurfaceClass, number> = { unchanged: 0, additive: 1, changed: 2, breaking: 3 };

export function worstClass(classes: Iterable<SurfaceClass>): SurfaceClass {
  let worst: SurfaceClass = 'unchanged';
  for (const cls of classes) if (RANK[cls] > RANK[worst]) worst = cls;
  return worst;
}

/** Compare the candidate surface with the active one, item by item. */
export function diffSurfaces(from: SurfaceRecord, to: SurfaceRecord): SurfaceDiff {
  const before = new Map(from.items.map((entry) => [`${entry.kind}\u0000${entry.key}`, entry]));
  const after = new Map(to.items.map((entry) => [`${entry.kind}\u0000${entry.key}`, entry]));
  const changes: SurfaceChange[] = [];
  for (const [id, old] of before) {
    const next = after.get(id);
    if (!next) changes.push(removed(old));
    else if (next.hash !== old.hash) changes.push(...compareItem(old, next));
  }
  for (const [id, next] of after) if (!before.has(id)) changes.push(added(next));
  changes.sort((a, b) => compareItems(a, b) || a.change.localeCompare(b.change));
  const counts = { additive: 0, changed: 0, breaking: 0, added: 0, removed: 0, modified: 0 };
  const modified = new Set<string>();
  for (const change of changes) {
    counts[change.class] += 1;
    if (change.change === 'added') counts.added += 1;
    else if (change.change === 'removed') counts.removed += 1;
    else modified.add(`${change.kind}\u0000${change.key}`);
  }
  counts.modified = modified.size;
  return { class: worstClass(changes.map((change) => change.class)), fromHash: from.hash, toHash: to.hash, changes, counts };
}

function text(value: Json): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function added(entry: SurfaceItem): SurfaceChange {
  // New instructions are new text the model obeys, not a new capability.
  if (entry.kind === 'instructions') {
    return {
      kind: entry.kind,
      key: entry.key,
      change: 'description',
      class: 'changed',
      details: ['instructions added'],
      after: text(entry.value.text),
    };
  }
  return {
    kind: entry.kind,
    key: entry.key,
    change: 'added',
    class: 'additive',
    details: [`${entry.kind} added`],
    after: text(entry.value.description),
  };
}

function removed(entry: SurfaceItem): SurfaceChange {
  if (entry.kind === 'instructions') {
    return {
      kind: entry.kind,
      key: entry.key,
      change: 'description',
      class: 'changed',
      details: ['instructions removed'],
      before: text(entry.value.text),
    };
  }
  return {
    kind: entry.kind,
    key: entry.key,
    change: 'removed',
    class: 'breaking',
    details: [`${entry.kind} removed`],
    before: text(entry.value.description),
  };
}

/** One item whose hash changed: a change per aspect (description, schema, annotations, other). */
function compareItem(old: SurfaceItem, next: SurfaceItem): SurfaceChange[] {
  const base = { kind: old.kind, key: old.key };
  const a = old.value;
  const b = next.value;
  const changes: SurfaceChange[] = [];
  const textField = old.kind === 'instructions' ? 'text' : 'description';
  const textDetails: string[] = [];
  if (!same(a[textField], b[textField])) textDetails.push(old.kind === 'instructions' ? 'instructions changed' : 'description changed');
  if (!same(a.title, b.title)) textDetails.push(`title changed: ${show(a.title)} -> ${show(b.title)}`);
  if (textDetails.length > 0) {
    changes.push({
      ...base,
      change: 'description',
      class: 'changed',
      details: textDetails,
      before: text(a[textField]),
      after: text(b[textField]),
    });
  }
  if (old.kind === 'tool') {
    const schema = [
      ...compareSchema(a.inputSchema, b.inputSchema, 'input', ''),
      ...compareSchema(a.outputSchema, b.outputSchema, 'output', ''),
    ];
    if (schema.length > 0)
      changes.push({
        ...base,
        change: 'schema',
        class: worstGated(schema.map((entry) => entry.class)),
        details: schema.map((entry) => entry.detail),
      });
    const annotations = compareAnnotations(a.annotations, b.annotations);
    if (annotations.length > 0) {
      changes.push({
        ...base,
        change: 'annotations',
        class: worstGated(annotations.map((entry) => entry.class)),
        details: annotations.map((entry) => entry.detail),
      });
    }
  } else if (old.kind === 'prompt') {
    const args = compareArguments(a.arguments, b.arguments);
    if (args.length > 0)
      changes.push({
        ...base,
        change: 'schema',
        class: worstGated(args.map((entry) => entry.class)),
        details: args.map((entry) => entry.detail),
      });
  }
  const covered = new Set(['description', 'title', 'text', 'inputSchema', 'outputSchema', 'annotations', 'arguments']);
  const other = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((field) => !covered.has(field) && !same(a[field], b[field]));
  if (other.length > 0) {
    changes.push({
      ...base,
      change: 'other',
      class: 'changed',
      details: other.sort().map((field) => `${field} changed: ${show(a[field])} -> ${show(b[field])}`),
    });
  }
  return changes;
}

interface Finding {
  class: GatedClass;
  detail: string;
}

function worstGated(classes: GatedClass[]): GatedClass {
  return worstClass(classes) as GatedClass;
}

function same(a: Json, b: Json): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function show(value: Json): string {
  if (value === undefined) return '(none)';
  const json = canonicalJson(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function asObject(value: Json): JsonObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : undefined;
}

function typeOf(schema: JsonObject): string | undefined {
  const type = schema.type;
  if (Array.isArray(type)) return [...type].map(String).sort().join('|');
  return typeof type === 'string' ? type : undefined;
}

/**
 * JSON Schema of a tool's input (or output), walked through `properties` and `items`. For input,
 * a parameter that becomes required, changes type or goes away breaks callers; a new optional one
 * is additive; anything else (descriptions, enums, formats) is a change the model reads.
 */
function compareSchema(beforeValue: Json, afterValue: Json, side: 'input' | 'output', at: string): Finding[] {
  if (same(beforeValue, afterValue)) return [];
  const label = side === 'input' ? 'parameter' : 'output field';
  const where = at || (side === 'input' ? 'inputSchema' : 'outputSchema');
  const before = asObject(beforeValue);
  const after = asObject(afterValue);
  if (!before || !after) {
    if (side === 'output' && !before) return [{ class: 'additive', detail: 'outputSchema added' }];
    return [{ class: side === 'input' || !after ? 'breaking' : 'changed', detail: `${where} ${before ? 'removed' : 'added'}` }];
  }
  const findings: Finding[] = [];
  const typeBefore = typeOf(before);
  const typeAfter = typeOf(after);
  if (typeBefore !== typeAfter)
    findings.push({
      class: 'breaking',
      detail: `${at ? `${label} ${at}` : where} type changed: ${typeBefore ?? '(any)'} -> ${typeAfter ?? '(any)'}`,
    });

  const propsBefore = asObject(before.properties) ?? {};
  const propsAfter = asObject(after.properties) ?? {};
  const requiredBefore = new Set(Array.isArray(before.required) ? before.required.map(String) : []);
  const requiredAfter = new Set(Array.isArray(after.required) ? after.required.map(String) : []);
  const path = (name: string) => (at ? `${at}.${name}` : name);
  for (const name of Object.keys(propsBefore).sort()) {
    if (!(name in propsAfter)) findings.push({ class: 'breaking', detail: `${label} removed: ${path(name)}` });
    else findings.push(...compareSchema(propsBefore[name], propsAfter[name], side, path(name)));
  }
  for (const name of Object.keys(propsAfter).sort()) {
    if (name in propsBefore) continue;
    const required = requiredAfter.has(name);
    findings.push({
      class: required && side === 'input' ? 'breaking' : 'additive',
      detail: `${required ? 'required' : 'optional'} ${label} added: ${path(name)}`,
    });
  }
  for (const name of [...requiredAfter].sort()) {
    if (requiredBefore.has(name) || !(name in propsBefore)) continue;
    findings.push({ class: side === 'input' ? 'breaking' : 'changed', detail: `${label} became required: ${path(name)}` });
  }
  for (const name of [...requiredBefore].sort()) {
    if (!requiredAfter.has(name) && name in propsAfter)
      findings.push({ class: side === 'input' ? 'changed' : 'breaking', detail: `${label} became optional: ${path(name)}` });
  }
  if (before.items !== undefined || after.items !== undefined)
    findings.push(...compareSchema(before.items, after.items, side, `${at || where}[]`));

  const structural = new Set(['type', 'properties', 'required', 'items']);
  const rest = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
    (key) => !structural.has(key) && !same(before[key], after[key]),
  );
  for (const key of rest.sort()) {
    findings.push({
      class: 'changed',
      detail: `${at ? `${label} ${at}` : where} ${key} changed: ${show(before[key])} -> ${show(after[key])}`,
    });
  }
  return findings;
}

/** MCP's defaults when a hint is absent (the spec's ToolAnnotations). */
const HINT_DEFAULTS: Record<string, boolean> = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true };
/** The value of each hint a model should be more careful about. */
const DANGEROUS: Record<string, boolean> = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true };
/** Hints whose move to the dangerous value breaks (idempotentHint only changes how retries look). */
const BREAKING_HINTS = new Set(['readOnlyHint', 'destructiveHint', 'openWorldHint']);

function compareAnnotations(beforeValue: Json, afterValue: Json): Finding[] {
  const before = asObject(beforeValue) ?? {};
  const after = asObject(afterValue) ?? {};
  const findings: Finding[] = [];
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    if (same(before[key], after[key])) continue;
    if (key in HINT_DEFAULTS) {
      const was = typeof before[key] === 'boolean' ? (before[key] as boolean) : HINT_DEFAULTS[key]!;
      const is = typeof after[key] === 'boolean' ? (after[key] as boolean) : HINT_DEFAULTS[key]!;
      const detail = `${key} ${show(before[key])} -> ${show(after[key])}`;
      if (was === is) findings.push({ class: 'changed', detail: `${detail} (same effective value)` });
      else if (is === DANGEROUS[key] && BREAKING_HINTS.has(key)) findings.push({ class: 'breaking', detail });
      else findings.push({ class: 'changed', detail });
    } else {
      findings.push({ class: 'changed', detail: `${key} ${show(before[key])} -> ${show(after[key])}` });
    }
  }
  return findings;
}

function compareArguments(beforeValue: Json, afterValue: Json): Finding[] {
  const list = (value: Json) =>
    new Map((Array.isArray(value) ? value : []).map((entry) => asObject(entry) ?? {}).map((entry) => [String(entry.name), entry]));
  const before = list(beforeValue);
  const after = list(afterValue);
  const findings: Finding[] = [];
  for (const [name, old] of before) {
    const next = after.get(name);
    if (!next) {
      findings.push({ class: 'breaking', detail: `argument removed: ${name}` });
      continue;
    }
    if (next.required === true && old.required !== true) findings.push({ class: 'breaking', detail: `argument became required: ${name}` });
    if (old.required === true && next.required !== true) findings.push({ class: 'changed', detail: `argument became optional: ${name}` });
    for (const key of ['description', 'title'])
      if (!same(old[key], next[key])) findings.push({ class: 'changed', detail: `argument ${name} ${key} changed` });
  }
  for (const [name, next] of after) {
    if (!before.has(name))
      findings.push({
        class: next.required === true ? 'breaking' : 'additive',
        detail: `${next.required === true ? 'required' : 'optional'} argument added: ${name}`,
      });
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------
// Gate and summary

/** What the gate does with a diff of this class. */
export function surfaceGateAction(cls: SurfaceClass, settings: SurfaceChangeSettings): SurfaceGateAction {
  return cls === 'unchanged' ? 'auto' : settings[cls];
}

/** Lines of a description an event or a one-line reason shows. */
const SUMMARY_LINES = 3;
const SUMMARY_LINE_CHARS = 200;

export function firstLines(value: string | undefined, lines = SUMMARY_LINES): string[] {
  if (!value) return [];
  return value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
    .slice(0, lines)
    .map((line) => (line.length > SUMMARY_LINE_CHARS ? `${line.slice(0, SUMMARY_LINE_CHARS - 3)}...` : line));
}

export interface SurfaceSummary {
  class: SurfaceClass;
  counts: SurfaceDiff['counts'];
  added: string[];
  removed: string[];
  modified: string[];
  /** The first lines of each changed (or new) description: what the model will read now. */
  descriptions: Array<{ item: string; lines: string[] }>;
}

function itemName(change: Pick<SurfaceChange, 'kind' | 'key'>): string {
  return change.kind === 'instructions' ? 'instructions' : `${change.kind} ${change.key}`;
}

/** What update.surface-changed carries: counts, names, the first lines of each changed description. */
export function summarizeDiff(diff: SurfaceDiff): SurfaceSummary {
  const names = (kind: ChangeKind[]) => [...new Set(diff.changes.filter((change) => kind.includes(change.change)).map(itemName))];
  return {
    class: diff.class,
    counts: diff.counts,
    added: names(['added']),
    removed: names(['removed']),
    modified: names(['description', 'schema', 'annotations', 'other']),
    descriptions: diff.changes
      .filter((change) => (change.change === 'description' || change.change === 'added') && change.after)
      .map((change) => ({ item: itemName(change), lines: firstLines(change.after) })),
  };
}

/** One line for the server record and the status page ("breaking: removed tool add; changed tool echo"). */
export function describeDiff(diff: SurfaceDiff): string {
  const summary = summarizeDiff(diff);
  const parts = [
    summary.removed.length > 0 ? `removed ${summary.removed.join(', ')}` : '',
    summary.modified.length > 0 ? `changed ${summary.modified.join(', ')}` : '',
    summary.added.length > 0 ? `added ${summary.added.join(', ')}` : '',
  ].filter(Boolean);
  return `${diff.class}${parts.length > 0 ? `: ${parts.join('; ')}` : ''}`;
}
