/*
 * The HTTP API's contract as an OpenAPI 3.1 document, served at GET /api/v1/openapi.json.
 * test/openapi.test.ts walks the express app's routes and fails on a route this document does
 * not describe (or a path it describes that no route serves), and checks real answers against
 * the schemas here, so the document stays true as the code changes.
 */
import type { RequestHandler } from 'express';
import { EVENT_TYPES } from '../shared/events.js';
import { POLICIES } from '../shared/inventory.js';
import { QUEUE_NAMES } from '../shared/queues.js';
import { SERVER_NAME_PATTERN } from '../shared/schemas.js';
import { SERVER_STATES } from '../shared/stateMachine.js';
import { SURFACE_CLASSES, SURFACE_KINDS } from '../shared/surface.js';
import { SESSION_COOKIE } from './auth.js';
import { BOARD_PATH } from './board.js';
import { PACKAGE_VERSION } from '../shared/packageVersion.js';

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string, extra: Schema = {}): Schema => ({ type: [type, 'null'], ...extra });
const json = (schema: Schema) => ({ 'application/json': { schema } });

/** An object whose every listed key is required and no other key is allowed. */
function strict(properties: Record<string, Schema>, optional: string[] = []): Schema {
  return {
    type: 'object',
    properties,
    required: Object.keys(properties).filter((key) => !optional.includes(key)),
    additionalProperties: false,
  };
}

const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

/** The answers every read of /api/v1 may give besides its own. */
const READ_ERRORS = {
  429: errorResponse('Over the read rate limit (ERATELIMIT).'),
  503: errorResponse('Redis does not answer (EREDIS).'),
};

/** The answers every change (POST) may give besides its own. */
const CHANGE_ERRORS = {
  400: errorResponse("Bad input: the body, a parameter or the query failed validation; `message` is joi's (EVALIDATION)."),
  401: errorResponse('No token, or a wrong one (EUNAUTHORIZED); a `WWW-Authenticate: Bearer` header says how to authenticate.'),
  403: errorResponse(
    'API_TOKEN is unset, so the API is read-only (EREADONLY), or a cookie-authenticated request came from another origin (EORIGIN).',
  ),
  413: errorResponse('The body is over 16 kB (ETOOLARGE).'),
  429: errorResponse('Over the change rate limit (ERATELIMIT); counted before the token check.'),
  503: errorResponse('Redis does not answer (EREDIS).'),
};

const CHANGE_SECURITY = [{ bearerToken: [] }, { sessionCookie: [] }];

const serverNameParameter = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'A server of the inventory.',
  schema: ref('ServerName'),
};

const queueCounts = strict({
  waiting: {
    type: 'integer',
    minimum: 0,
    description: 'Ready to run, waiting for a free worker (prioritized and waiting-children included).',
  },
  active: { type: 'integer', minimum: 0 },
  delayed: {
    type: 'integer',
    minimum: 0,
    description: "Scheduled: due later (each server's next scheduled check, retries waiting out their backoff).",
  },
  failed: { type: 'integer', minimum: 0 },
  completed: { type: 'integer', minimum: 0 },
});

const serverViewProperties: Record<string, Schema> = {
  name: ref('ServerName'),
  ecosystem: {
    type: 'string',
    enum: ['npm', 'pypi'],
    description: 'Where the package comes from: the npm registry, or a Python package index (pypi:).',
  },
  package: { type: 'string', description: 'The npm package, or the project on the Python package index.' },
  channel: { type: 'string', description: 'The dist-tag followed.' },
  policy: { type: 'string', enum: [...POLICIES] },
  activation: { type: 'string', enum: ['auto', 'manual'] },
  current: nullable('string', { description: 'The active version: what bin/<name> runs.' }),
  previous: nullable('string'),
  latest: nullable('string', { description: 'What the followed dist-tag points at.' }),
  candidate: nullable('string', { description: 'Highest version the policy allows now (may equal current).' }),
  updateAvailable: { type: 'boolean', description: 'A candidate other than the current version exists.' },
  staged: nullable('string', { description: 'Staged version waiting for approval.' }),
  gate: nullable('string', {
    description:
      'Why the staged version waits when the surface gate holds it: the class and what changed (GET /api/v1/servers/{name}/diff shows it all).',
  }),
  state: ref('ServerState'),
  lastCheck: nullable('string', { format: 'date-time' }),
  lastCheckResult: nullable('string', { description: 'Short outcome of the last check ("up to date", "update 1.2.3").' }),
  lastError: nullable('string', { description: 'What went wrong last and what to do; secrets redacted.' }),
  failedVersions: {
    type: 'array',
    items: { type: 'string' },
    description: 'Versions that failed for a cause of their own; checks skip them unless forced.',
  },
  hold: {
    ...nullable('string'),
    description: 'After a rollback down: the version rolled away from; checks stay at or below it until a newer one is published.',
  },
  launcher: { type: 'string', description: 'The path MCP clients run: $MCP_SERVERS_PATH/bin/<name>.' },
  disk: {
    oneOf: [{ type: 'null' }, ref('ServerDiskUsage')],
    description: 'Bytes on disk, measured after the last stage, activation or cleanup (null before any).',
  },
};

const schemas: Record<string, Schema> = {
  ServerName: {
    type: 'string',
    pattern: SERVER_NAME_PATTERN.source,
    description: '1-63 lower-case letters, digits or dashes, starting with a letter or digit.',
  },
  Version: {
    type: 'string',
    maxLength: 256,
    pattern: '^[0-9A-Za-z.+-]+$',
    description: 'A semver version such as 1.2.3 (npm servers) or a normalized PEP 440 version such as 2025.4.7 or 1.0rc1 (pypi servers).',
  },
  ServerState: { type: 'string', enum: [...SERVER_STATES] },
  Error: strict({
    error: strict(
      {
        code: { type: 'string', description: 'Stable error code (EVALIDATION, ENOTFOUND, EREDIS, …).' },
        message: { type: 'string' },
        hint: { type: 'string', description: 'What to do about it.' },
      },
      ['hint'],
    ),
  }),
  JobAccepted: strict({
    jobId: { type: 'string' },
    queue: { type: 'string', enum: [...QUEUE_NAMES] },
  }),
  ServerDiskUsage: {
    ...strict({
      bytes: {
        type: 'integer',
        minimum: 0,
        description: "Each inode of the server's directory once (its versions share files through the store).",
      },
      sharedBytes: {
        type: 'integer',
        minimum: 0,
        description: 'Of bytes, files another server links too: removing this server frees bytes - sharedBytes.',
      },
      fullCopyBytes: { type: 'integer', minimum: 0, description: 'What the same files would take as full copies.' },
      measuredAt: { type: 'string', format: 'date-time' },
    }),
    description: 'A file several servers share counts in full for each of them; sharedBytes says how much that is.',
  },
  ServerView: {
    ...strict(serverViewProperties),
    description: 'One server as the status page, this API and the CLI show it. Absent values are null.',
  },
  Settings: strict({
    ecosystem: { type: 'string', enum: ['npm', 'pypi'] },
    python: {
      oneOf: [
        { type: 'null' },
        strict({
          python: nullable('string', { description: 'PEP 440 specifier the interpreter must satisfy.' }),
          extras: { type: 'array', items: { type: 'string' } },
          allowSdist: { type: 'boolean' },
          command: nullable('string', { description: 'The console script run when the distribution has several.' }),
        }),
      ],
      description: 'pypi servers only; null for npm servers.',
    },
    version: nullable('string'),
    channel: { type: 'string' },
    range: nullable('string'),
    bin: nullable('string'),
    schedule: { type: 'string', description: 'Cron expression of the check schedule.' },
    timezone: { type: 'string' },
    policy: { type: 'string', enum: [...POLICIES] },
    minReleaseAgeMs: { type: 'integer', minimum: 0 },
    activation: { type: 'string', enum: ['auto', 'manual'] },
    keep: { type: 'integer', minimum: 1 },
    allowScripts: { type: ['array', 'null'], items: { type: 'string' }, description: 'Packages whose install scripts run; null: none.' },
    smokeTest: strict({
      enabled: { type: 'boolean' },
      timeoutMs: { type: 'integer', minimum: 0 },
      command: nullable('string'),
      args: { type: 'array', items: { type: 'string' }, description: 'Secret-looking arguments are redacted.' },
      network: { type: 'boolean', description: 'false: the sandboxed smoke test has no network.' },
      env: { type: 'object', additionalProperties: { const: '[REDACTED]' }, description: 'Keys only: values may be secrets.' },
    }),
    surfaceChange: {
      ...strict(
        Object.fromEntries(
          SURFACE_CLASSES.filter((cls) => cls !== 'unchanged').map((cls) => [cls, { type: 'string', enum: ['auto', 'approve'] }]),
        ),
      ),
      description: 'What the surface gate does with each class of MCP surface change.',
    },
    provenance: {
      type: 'string',
      enum: ['off', 'warn', 'require'],
      description:
        'npm registry signatures and provenance attestations: warn refuses bad signatures and warns on bad or missing provenance, require refuses both.',
    },
    repository: {
      type: ['string', 'null'],
      description:
        "The source repository (host/owner/repo) every version's verified provenance must name; null: any, a change waits for approval.",
    },
  }),
  ProvenanceSource: {
    ...strict(
      {
        repository: { type: 'string', description: 'host/owner/repo, lower case.' },
        commit: { type: 'string' },
        workflow: { type: 'string' },
        ref: { type: 'string' },
        builder: { type: 'string' },
        issuer: { type: 'string', description: 'OIDC issuer of the signing certificate.' },
        predicateType: { type: 'string' },
      },
      ['commit', 'workflow', 'ref', 'builder', 'issuer'],
    ),
    description: 'Where a version was built, as its verified npm provenance attestation says.',
  },
  HistoryEntry: strict(
    {
      action: { type: 'string', enum: ['install', 'activate', 'approve', 'rollback', 'auto-rollback'] },
      from: { type: 'string' },
      to: { type: 'string' },
      at: { type: 'string', format: 'date-time' },
      jobId: { type: 'string' },
      integrity: { type: 'string' },
      reason: { type: 'string' },
      surfaceHash: {
        type: 'string',
        description: 'sha256 of the MCP surface `to` had when it went live; for approve, the surface approved.',
      },
      approvedBy: { type: 'string', description: 'Who approved (approve only).' },
      provenance: ref('ProvenanceSource'),
    },
    ['from', 'jobId', 'integrity', 'reason', 'surfaceHash', 'approvedBy', 'provenance'],
  ),
  SurfaceComparison: {
    ...strict({
      server: ref('ServerName'),
      from: {
        oneOf: [strict({ version: { type: 'string' }, hash: { type: 'string' } }), { type: 'null' }],
        description: 'The baseline; null when nothing is active (every item is then added).',
      },
      to: strict({ version: { type: 'string' }, hash: { type: 'string', description: 'sha256 of the whole surface.' } }),
      diff: strict(
        {
          class: { type: 'string', enum: [...SURFACE_CLASSES] },
          fromHash: { type: 'string' },
          toHash: { type: 'string' },
          changes: {
            type: 'array',
            items: strict(
              {
                kind: { type: 'string', enum: [...SURFACE_KINDS] },
                key: { type: 'string', description: 'Tool or prompt name, resource URI, template, or "instructions".' },
                change: { type: 'string', enum: ['added', 'removed', 'description', 'schema', 'annotations', 'other'] },
                class: { type: 'string', enum: SURFACE_CLASSES.filter((cls) => cls !== 'unchanged') },
                details: { type: 'array', items: { type: 'string' } },
                before: { type: 'string' },
                after: { type: 'string' },
              },
              ['before', 'after'],
            ),
          },
          counts: strict(
            Object.fromEntries(
              ['additive', 'changed', 'breaking', 'added', 'removed', 'modified'].map((key) => [key, { type: 'integer', minimum: 0 }]),
            ),
          ),
        },
        ['fromHash'],
      ),
      summary: strict({
        class: { type: 'string', enum: [...SURFACE_CLASSES] },
        counts: { type: 'object' },
        added: { type: 'array', items: { type: 'string' } },
        removed: { type: 'array', items: { type: 'string' } },
        modified: { type: 'array', items: { type: 'string' } },
        descriptions: { type: 'array', items: strict({ item: { type: 'string' }, lines: { type: 'array', items: { type: 'string' } } }) },
      }),
    }),
    description:
      'What changed in a server\'s MCP surface between two installed versions, item by item (classes: docs/ARCHITECTURE.md "Surface gate").',
  },
  ServerDetail: {
    ...strict({
      ...serverViewProperties,
      settings: ref('Settings'),
      history: { type: 'array', items: ref('HistoryEntry'), description: 'Newest first.' },
      source: { oneOf: [ref('ProvenanceSource'), { type: 'null' }], description: "The current version's verified source; null: unknown." },
    }),
    description: "ServerView with the server's settings and version history.",
  },
  UpdateEvent: strict(
    {
      type: { type: 'string', enum: [...EVENT_TYPES] },
      server: ref('ServerName'),
      ecosystem: { type: 'string', enum: ['npm', 'pypi'], description: "The server's ecosystem when the event was published." },
      version: { type: 'string' },
      from: { type: 'string' },
      at: { type: 'string', format: 'date-time' },
      reason: { type: 'string' },
      jobId: { type: 'string' },
      actor: { type: 'string', description: 'Who asked (token fingerprint or session), when an operator did.' },
      details: { type: 'object', description: 'Extra facts: bytesFreed for cleanup.done, toolCount for update.staged, …' },
    },
    ['ecosystem', 'version', 'from', 'reason', 'jobId', 'actor', 'details'],
  ),
  QueueCounts: queueCounts,
  Status: strict({
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    version: { type: 'string', description: "mcp-updater's version." },
    startedAt: { type: 'string', format: 'date-time' },
    uptimeSeconds: { type: 'integer', minimum: 0 },
    redis: strict({ reachable: { type: 'boolean' }, error: nullable('string') }),
    smokeTests: strict({
      sandboxed: { type: 'boolean', description: 'Smoke tests on this host run inside bubblewrap.' },
      summary: { type: 'string', description: 'One line: sandboxed, or why not.' },
    }),
    queues: {
      type: ['object', 'null'],
      propertyNames: { enum: [...QUEUE_NAMES] },
      additionalProperties: ref('QueueCounts'),
      description: 'null while Redis does not answer.',
    },
    servers: {
      oneOf: [
        strict({
          total: { type: 'integer', minimum: 0 },
          byState: strict(Object.fromEntries(SERVER_STATES.map((state) => [state, { type: 'integer', minimum: 0 }]))),
        }),
        { type: 'null' },
      ],
      description: 'Inventory servers by state; null while Redis does not answer.',
    },
  }),
};

const htmlPage = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } });

const paths: Record<string, Record<string, unknown>> = {
  '/': {
    get: {
      tags: ['pages'],
      summary: 'Status page',
      operationId: 'statusPage',
      description:
        'Every server with its current, latest and available version, state, last check and last error; queue counts; recent events. Action buttons for a logged-in user.',
      responses: { 200: htmlPage('The page.'), 429: htmlPage('Over the read rate limit.'), 503: htmlPage('Redis does not answer.') },
    },
  },
  '/servers/{name}/diff': {
    get: {
      tags: ['pages'],
      summary: 'Surface diff view of one server',
      operationId: 'surfaceDiffPage',
      description:
        "What changed in the server's MCP surface, most severe first, descriptions in full (the same comparison as GET /api/v1/servers/{name}/diff).",
      parameters: [
        serverNameParameter,
        { name: 'from', in: 'query', schema: ref('Version') },
        { name: 'to', in: 'query', schema: ref('Version') },
      ],
      responses: {
        200: htmlPage('The page.'),
        400: htmlPage('Malformed name or version.'),
        404: htmlPage('Unknown server, version not installed, or no surface record.'),
      },
    },
  },
  '/login': {
    get: {
      tags: ['pages'],
      summary: 'Login form',
      operationId: 'loginForm',
      parameters: [{ name: 'next', in: 'query', schema: { type: 'string' }, description: 'Local path to go to after login.' }],
      responses: { 200: htmlPage('The form (or a read-only notice when API_TOKEN is unset).') },
    },
    post: {
      tags: ['pages'],
      summary: 'Trade API_TOKEN for a session cookie',
      operationId: 'login',
      description: `Sets the HttpOnly, SameSite=Strict cookie \`${SESSION_COOKIE}\` (12 h); the cookie holds a random id, never the token.`,
      requestBody: {
        required: true,
        content: {
          'application/x-www-form-urlencoded': {
            schema: { type: 'object', properties: { token: { type: 'string' }, next: { type: 'string' } }, required: ['token'] },
          },
          'application/json': {
            schema: { type: 'object', properties: { token: { type: 'string' }, next: { type: 'string' } }, required: ['token'] },
          },
        },
      },
      responses: {
        303: { description: 'Logged in: redirect to `next` (a local path) or /.' },
        401: htmlPage('Wrong token: the form again.'),
        403: errorResponse('API_TOKEN is unset (EREADONLY), or the Origin is another site (EORIGIN).'),
        429: errorResponse('Over the login rate limit (ERATELIMIT).'),
      },
    },
  },
  '/logout': {
    post: {
      tags: ['pages'],
      summary: 'End the session',
      operationId: 'logout',
      responses: { 303: { description: 'Session ended: redirect to /.' }, 403: errorResponse('The Origin is another site (EORIGIN).') },
    },
  },
  '/favicon.ico': {
    get: {
      tags: ['probes'],
      summary: 'No icon file (the pages carry one inline)',
      operationId: 'favicon',
      responses: { 204: { description: 'Nothing.' } },
    },
  },
  '/health': {
    get: {
      tags: ['probes'],
      summary: 'Liveness',
      operationId: 'health',
      description: 'Answers without touching Redis.',
      responses: { 200: { description: 'The process answers.', content: json(strict({ status: { const: 'ok' } })) } },
    },
  },
  '/ready': {
    get: {
      tags: ['probes'],
      summary: 'Readiness: does Redis answer?',
      operationId: 'ready',
      responses: {
        200: { description: 'Redis answers.', content: json(strict({ status: { const: 'ready' } })) },
        503: {
          description: 'Redis does not answer.',
          content: json(strict({ status: { const: 'unavailable' }, reason: { type: 'string' } })),
        },
      },
    },
  },
  '/metrics': {
    get: {
      tags: ['probes'],
      summary: 'Prometheus metrics (prefix mcp_updater_)',
      operationId: 'metrics',
      responses: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  },
  '/status': {
    get: {
      tags: ['probes'],
      summary: 'Version, uptime, Redis, queue counts and servers by state',
      operationId: 'status',
      responses: {
        200: { description: 'Redis answers.', content: json(ref('Status')) },
        503: { description: 'Redis does not answer: `redis.error` says why; queues and servers are null.', content: json(ref('Status')) },
      },
    },
  },
  [BOARD_PATH]: {
    'x-mount': 'Bull Board: its UI and its own JSON API live under this prefix.',
    get: {
      tags: ['pages'],
      summary: 'Bull Board (queues and jobs)',
      operationId: 'bullBoard',
      description:
        'Needs the token or a session; read-only (no retries, no removal) when API_TOKEN is unset. Job data and errors are redacted.',
      security: CHANGE_SECURITY,
      responses: {
        200: htmlPage('The board.'),
        303: { description: 'A browser without a session: redirect to /login.' },
        401: errorResponse('No token, or a wrong one.'),
      },
    },
  },
  '/api/v1/openapi.json': {
    get: {
      tags: ['api'],
      summary: 'This document',
      operationId: 'openApiDocument',
      responses: { 200: { description: 'OpenAPI 3.1.', content: json({ type: 'object' }) } },
    },
  },
  '/api/v1/servers': {
    get: {
      tags: ['api'],
      summary: 'Every inventory server',
      operationId: 'listServers',
      description: 'In inventory order; the answer may be up to a second old.',
      responses: {
        200: { description: 'The servers.', content: json(strict({ servers: { type: 'array', items: ref('ServerView') } })) },
        ...READ_ERRORS,
      },
    },
  },
  '/api/v1/servers/{name}': {
    get: {
      tags: ['api'],
      summary: 'One server with its settings and version history',
      operationId: 'getServer',
      parameters: [serverNameParameter],
      responses: {
        200: { description: 'The server.', content: json(ref('ServerDetail')) },
        400: errorResponse('Malformed server name (EVALIDATION).'),
        404: errorResponse('Not in the inventory (ENOTFOUND).'),
        ...READ_ERRORS,
      },
    },
  },
  '/api/v1/servers/{name}/diff': {
    get: {
      tags: ['api'],
      summary: 'What changed in the MCP surface between two versions',
      operationId: 'surfaceDiff',
      parameters: [
        serverNameParameter,
        {
          name: 'from',
          in: 'query',
          schema: ref('Version'),
          description: 'Default: the active version (the previous one when `to` is active).',
        },
        { name: 'to', in: 'query', schema: ref('Version'), description: 'Default: the version waiting for approval, else the active one.' },
      ],
      responses: {
        200: { description: 'The comparison.', content: json(ref('SurfaceComparison')) },
        400: errorResponse('Malformed server name or version (EVALIDATION).'),
        404: errorResponse('Not in the inventory, a version not installed, or one without a surface record (ENOTFOUND).'),
        ...READ_ERRORS,
      },
    },
  },
  '/api/v1/events': {
    get: {
      tags: ['api'],
      summary: 'Audit events, newest first',
      operationId: 'listEvents',
      parameters: [
        { name: 'server', in: 'query', schema: ref('ServerName'), description: 'Only this server (also one that has left the inventory).' },
        { name: 'type', in: 'query', schema: { type: 'string', enum: [...EVENT_TYPES] } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
      ],
      responses: {
        200: { description: 'The events.', content: json(strict({ events: { type: 'array', items: ref('UpdateEvent') } })) },
        400: errorResponse('Bad query (EVALIDATION).'),
        404: errorResponse('A server that never had state (ENOTFOUND).'),
        ...READ_ERRORS,
      },
    },
  },
  '/api/v1/servers/{name}/check': {
    post: {
      tags: ['api'],
      summary: 'Enqueue a check of one server',
      operationId: 'checkServer',
      security: CHANGE_SECURITY,
      parameters: [serverNameParameter],
      requestBody: {
        required: false,
        content: json(
          strict(
            {
              force: { type: 'boolean', description: 'Check again even a version that failed before, and ignore the minimum release age.' },
              reason: { type: 'string', maxLength: 300 },
            },
            ['force', 'reason'],
          ),
        ),
      },
      responses: {
        202: { description: 'Enqueued.', content: json(ref('JobAccepted')) },
        404: errorResponse('Not in the inventory (ENOTFOUND).'),
        ...CHANGE_ERRORS,
      },
    },
  },
  '/api/v1/checks': {
    post: {
      tags: ['api'],
      summary: 'Enqueue a check of every server',
      operationId: 'checkAll',
      security: CHANGE_SECURITY,
      requestBody: {
        required: false,
        content: json(strict({ force: { type: 'boolean' }, reason: { type: 'string', maxLength: 300 } }, ['force', 'reason'])),
      },
      responses: {
        202: {
          description: 'Enqueued.',
          content: json(strict({ jobIds: { type: 'array', items: { type: 'string' } }, queue: { const: 'check' } })),
        },
        ...CHANGE_ERRORS,
      },
    },
  },
  '/api/v1/servers/{name}/approve': {
    post: {
      tags: ['api'],
      summary: 'Activate the staged version (activation: manual)',
      operationId: 'approve',
      security: CHANGE_SECURITY,
      parameters: [serverNameParameter],
      requestBody: { required: true, content: json(strict({ version: ref('Version') })) },
      responses: {
        202: { description: 'Activation enqueued.', content: json(ref('JobAccepted')) },
        404: errorResponse('Not in the inventory (ENOTFOUND).'),
        409: errorResponse('That version is not the one staged (ECONFLICT).'),
        ...CHANGE_ERRORS,
      },
    },
  },
  '/api/v1/servers/{name}/rollback': {
    post: {
      tags: ['api'],
      summary: 'Go back to the previous (or a named) installed version',
      operationId: 'rollback',
      security: CHANGE_SECURITY,
      parameters: [serverNameParameter],
      requestBody: { required: false, content: json(strict({ version: ref('Version') }, ['version'])) },
      responses: {
        202: { description: 'Rollback enqueued.', content: json(ref('JobAccepted')) },
        404: errorResponse('Not in the inventory (ENOTFOUND).'),
        409: errorResponse('No previous version, or the target is already active (ECONFLICT).'),
        ...CHANGE_ERRORS,
      },
    },
  },
  '/api/v1/cleanup': {
    post: {
      tags: ['api'],
      summary: 'Enqueue a cleanup of old versions and backups',
      operationId: 'cleanup',
      security: CHANGE_SECURITY,
      requestBody: {
        required: false,
        content: json(
          strict({ dryRun: { type: 'boolean', description: 'Say what would be removed; remove nothing.' }, server: ref('ServerName') }, [
            'dryRun',
            'server',
          ]),
        ),
      },
      responses: {
        202: { description: 'Enqueued.', content: json(ref('JobAccepted')) },
        404: errorResponse('Not in the inventory (ENOTFOUND).'),
        ...CHANGE_ERRORS,
      },
    },
  },
};

export const OPENAPI_DOCUMENT = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'mcp-updater',
    version: PACKAGE_VERSION,
    description:
      'Keeps a fleet of MCP servers up to date. Reads are public; every change needs `Authorization: Bearer $API_TOKEN` '
      + 'or a session from POST /login, and only enqueues a job. Errors are `{"error": {"code", "message", "hint"?}}`.',
    license: { name: 'MIT', identifier: 'MIT' },
  },
  servers: [{ url: '/', description: 'The dashboard at HOST:PORT (default 127.0.0.1:10250).' }],
  tags: [
    { name: 'api', description: 'REST API v1 (JSON).' },
    { name: 'probes', description: 'Health, readiness, metrics and status for monitoring; no auth, no rate limit.' },
    { name: 'pages', description: 'HTML for people.' },
  ],
  paths,
  components: {
    schemas,
    securitySchemes: {
      bearerToken: { type: 'http', scheme: 'bearer', description: 'API_TOKEN.' },
      sessionCookie: {
        type: 'apiKey',
        in: 'cookie',
        name: SESSION_COOKIE,
        description: 'From POST /login; changes also need a same-origin Origin or Referer.',
      },
    },
  },
});

const DOCUMENT_JSON = JSON.stringify(OPENAPI_DOCUMENT);

export const serveOpenApi: RequestHandler = (_req, res) => {
  res.set('cache-control', 'no-cache').type('application/json').send(DOCUMENT_JSON);
};
