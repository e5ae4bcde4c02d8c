/*
 * The read model of a pypi server (shared/serverView.ts) as the API serves it: ecosystem, Python
 * settings and PEP 440 versions, valid against the OpenAPI document's schemas.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { OPENAPI_DOCUMENT } from '../dashboard/openapi.js';
import { parseInventory } from '../shared/inventory.js';
import { packageLabel, publicSettings, serverView } from '../shared/serverView.js';

const SCHEMAS_ID = 'https://mcp-updater.invalid/schemas.json';

describe('read model: pypi servers', () => {
  const document = JSON.parse(JSON.stringify(OPENAPI_DOCUMENT).replaceAll('"#/components/schemas/', `"${SCHEMAS_ID}#/$defs/`)) as {
    components: { schemas: Record<string, unknown> };
  };
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: SCHEMAS_ID, $defs: document.components.schemas });
  const inventory = parseInventory(
    'servers:\n  fetch:\n    pypi: mcp-server-fetch\n    python: ">=3.10"\n    extras: [cli]\n  memory:\n    package: m\n',
    'x.yaml',
    { schedule: '0 */6 * * *', timezone: 'UTC' },
  );
  const layout = { launcher: (name: string) => `/srv/mcp/bin/${name}` };

  it('shows the ecosystem and the Python settings, and the API schemas accept them', () => {
    const settings = inventory.servers.get('fetch')!;
    const view = serverView(
      settings,
      { name: 'fetch', state: 'idle', failedVersions: [], current: '2025.4.7', candidate: '2025.10.1rc1' },
      layout,
    );
    expect(view).to.include({ ecosystem: 'pypi', package: 'mcp-server-fetch', current: '2025.4.7' });
    expect(packageLabel(view)).to.equal('pypi:mcp-server-fetch');
    const detail = {
      ...view,
      settings: publicSettings(settings),
      history: [{ action: 'install', to: '2025.4.7', at: '2026-01-01T00:00:00.000Z' }],
      source: null,
    };
    expect(detail.settings).to.deep.include({
      ecosystem: 'pypi',
      python: { python: '>=3.10', extras: ['cli'], allowSdist: false, command: null },
    });
    const validate = ajv.compile({ $ref: `${SCHEMAS_ID}#/$defs/ServerDetail` });
    expect(validate(detail), JSON.stringify(validate.errors)).to.equal(true);
  });

  it('an npm server stays as it was: ecosystem npm, python null', () => {
    const settings = inventory.servers.get('memory')!;
    const view = serverView(settings, { name: 'memory', state: 'idle', failedVersions: [] }, layout);
    expect(packageLabel(view)).to.equal('m');
    const detail = { ...view, settings: publicSettings(settings), history: [], source: null };
    expect(detail.settings).to.include({ ecosystem: 'npm', python: null });
    const validate = ajv.compile({ $ref: `${SCHEMAS_ID}#/$defs/ServerDetail` });
    expect(validate(detail), JSON.stringify(validate.errors)).to.equal(true);
  });
});
