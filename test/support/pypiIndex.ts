/*
 * A Python package index on loopback for tests: the JSON API (`/pypi/<project>/json`), the simple
 * API (`/simple/<project>/`, PEP 691 JSON or HTML by the Accept header) and the files, with upload
 * times, yanked files and sha256 digests. Wheels are real: built at test time by Python's zipfile
 * (METADATA, WHEEL, RECORD, entry_points.txt), holding tiny MCP servers on the standard library.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type FixtureKind = 'healthy' | 'broken' | 'library';

export interface WheelSpec {
  name: string;
  version: string;
  kind: FixtureKind;
  /** Requires-Dist lines (`demo-helper>=1.0`). */
  requires?: string[];
  /** A healthy server imports this module and adds its TOOL to tools/list. */
  importsHelper?: string;
  requiresPython?: string;
  /** Console scripts besides the one named like the project. */
  extraScripts?: string[];
  /** Extra zip entries as given (a hostile wheel: `../evil.py`). */
  extraEntries?: Array<[string, string]>;
  /** Healthy while staged, but exits at once when run from versions/ (a failing post-activation check). */
  failsWhenActive?: boolean;
}

export interface IndexPublishOptions extends WheelSpec {
  uploadedAt: Date;
  yanked?: boolean;
  /** Serve bytes that do not match the published digest. */
  corrupt?: boolean;
  /** Publish only an sdist (a real tar.gz built by an in-tree PEP 517 backend, see buildSdist), no wheel. */
  sdistOnly?: boolean;
  /** The sdist's `[build-system] requires` (default none: it builds without the network). */
  buildRequires?: string[];
  /** The sdist's backend fails with this message instead of building. */
  buildFails?: string;
  /** The sdist's backend fails when it can fetch this URL (a build that must run without network). */
  buildProbesNetwork?: string;
}

interface StoredFile {
  filename: string;
  bytes: Buffer;
  served: Buffer;
  sha256: string;
  uploadedAt: Date;
  yanked: boolean;
  packagetype: 'bdist_wheel' | 'sdist';
  requiresPython?: string;
}

/** A stdio JSON-RPC MCP server on the standard library: initialize, notifications/initialized, tools/list, ping. */
function serverSource(spec: WheelSpec): string {
  if (spec.kind === 'broken') {
    return 'import sys\n\ndef main():\n    sys.stderr.write("this server is broken on purpose\\n")\n    return 3\n';
  }
  const helper = spec.importsHelper ? `import ${spec.importsHelper}\nEXTRA = [${spec.importsHelper}.TOOL]\n` : 'EXTRA = []\n';
  const failing = spec.failsWhenActive
    ? 'import os\nif "/versions/" in os.path.realpath(__file__):\n    sys.stderr.write("fails when active\\n")\n    sys.exit(4)\n'
    : '';
  return `import json, sys
${failing}${helper}
TOOLS = [{"name": "echo", "description": "echo", "inputSchema": {"type": "object"}},
         {"name": "time", "description": "time", "inputSchema": {"type": "object"}}] + EXTRA

def answer(request_id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\\n")
    sys.stdout.flush()

def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        method = message.get("method")
        if "id" not in message:
            continue
        if method == "initialize":
            answer(message["id"], {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                                   "serverInfo": {"name": ${JSON.stringify(spec.name)}, "version": ${JSON.stringify(spec.version)}}})
        elif method == "tools/list":
            answer(message["id"], {"tools": TOOLS})
        elif method == "ping":
            answer(message["id"], {})
        else:
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no such method"}}) + "\\n")
            sys.stdout.flush()
    return 0
`;
}

const BUILD_WHEEL = `
import base64, hashlib, json, sys, zipfile
spec = json.load(sys.stdin)
out = sys.argv[1]
record = []
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as wheel:
    for path, text in spec["files"]:
        data = text.encode("utf-8")
        info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        wheel.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    record_path = spec["record"]
    record.append(record_path + ",,")
    info = zipfile.ZipInfo(record_path, date_time=(2026, 1, 1, 0, 0, 0))
    wheel.writestr(info, "\\n".join(record) + "\\n")
`;

function module(name: string): string {
  return name.replace(/[-.]+/g, '_').toLowerCase();
}

/** The core metadata of the spec: a wheel's METADATA, an sdist's PKG-INFO. */
function coreMetadata(spec: WheelSpec): string {
  return [
    'Metadata-Version: 2.1',
    `Name: ${spec.name}`,
    `Version: ${spec.version}`,
    ...(spec.requiresPython ? [`Requires-Python: ${spec.requiresPython}`] : []),
    ...(spec.requires ?? []).map((requirement) => `Requires-Dist: ${requirement}`),
    '',
  ].join('\n');
}

/** A real wheel (py3-none-any) of the spec. */
export function buildWheel(spec: WheelSpec, directory: string): { filename: string; bytes: Buffer } {
  const dist = `${module(spec.name)}-${spec.version}`;
  const info = `${dist}.dist-info`;
  const pkg = module(spec.name);
  const metadata = coreMetadata(spec);
  const files: Array<[string, string]> =
    spec.kind === 'library'
      ? [
          [
            `${pkg}/__init__.py`,
            `TOOL = {"name": "helper", "description": "from ${spec.name} ${spec.version}", "inputSchema": {"type": "object"}}\n`,
          ],
        ]
      : [
          [`${pkg}/__init__.py`, ''],
          [`${pkg}/server.py`, serverSource(spec)],
        ];
  files.push(...(spec.extraEntries ?? []));
  files.push([`${info}/METADATA`, metadata]);
  files.push([`${info}/WHEEL`, 'Wheel-Version: 1.0\nGenerator: mcp-updater-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n']);
  if (spec.kind !== 'library') {
    const scripts = [spec.name, ...(spec.extraScripts ?? [])].map((script) => `${script} = ${pkg}.server:main`);
    files.push([`${info}/entry_points.txt`, `[console_scripts]\n${scripts.join('\n')}\n`]);
  }
  const filename = `${dist}-py3-none-any.whl`;
  const out = `${directory}/${filename}`;
  execFileSync('python3', ['-I', '-c', BUILD_WHEEL, out], { input: JSON.stringify({ files, record: `${info}/RECORD` }) });
  return { filename, bytes: execFileSync('cat', [out]) };
}

/*
 * An in-tree PEP 517 backend (`backend-path = ["."]`): builds a py3-none-any wheel of the sdist's
 * package directory with the standard library, so the sdist's build needs nothing from the network.
 */
const SDIST_BACKEND = `import base64, hashlib, os, zipfile

FAIL = None
PROBE = None

def _digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if FAIL:
        raise RuntimeError(FAIL)
    if PROBE:
        import urllib.error, urllib.request
        try:
            urllib.request.urlopen(PROBE, timeout=5).read()
        except urllib.error.HTTPError:
            # Any HTTP answer (a 404 too) means the build reached the network.
            raise RuntimeError("the build reached " + PROBE)
        except Exception as error:
            print("no network during the build: %s" % error)
        else:
            raise RuntimeError("the build reached " + PROBE)
    meta = open("PKG-INFO", encoding="utf-8").read()
    fields = dict(line.split(": ", 1) for line in meta.splitlines() if ": " in line)
    dist = fields["Name"].replace("-", "_").lower() + "-" + fields["Version"]
    info = dist + ".dist-info"
    files = []
    for root, _dirs, names in os.walk(PACKAGE):
        for name in sorted(names):
            path = os.path.join(root, name)
            files.append((path.replace(os.sep, "/"), open(path, "rb").read()))
    files.append((info + "/METADATA", meta.encode()))
    files.append((info + "/WHEEL", b"Wheel-Version: 1.0\\nGenerator: fixture-backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"))
    files.append((info + "/entry_points.txt", ENTRY_POINTS.encode()))
    filename = dist + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        record = []
        for path, data in files:
            wheel.writestr(path, data)
            record.append("%s,sha256=%s,%d" % (path, _digest(data), len(data)))
        record.append(info + "/RECORD,,")
        wheel.writestr(info + "/RECORD", "\\n".join(record) + "\\n")
    return filename
`;

const BUILD_SDIST = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
with tarfile.open(sys.argv[1], "w:gz") as archive:
    for path, text in spec["files"]:
        data = text.encode("utf-8")
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 1767225600
        archive.addfile(info, io.BytesIO(data))
`;

/** A real sdist (tar.gz: PKG-INFO, pyproject.toml, the in-tree backend, the package) of the spec. */
export function buildSdist(
  spec: WheelSpec & Pick<IndexPublishOptions, 'buildRequires' | 'buildFails' | 'buildProbesNetwork'>,
  directory: string,
): { filename: string; bytes: Buffer } {
  const dist = `${module(spec.name)}-${spec.version}`;
  const pkg = module(spec.name);
  const pkgInfo = coreMetadata(spec);
  const pyproject = [
    '[build-system]',
    `requires = ${JSON.stringify(spec.buildRequires ?? [])}`,
    'build-backend = "backend"',
    'backend-path = ["."]',
    '',
  ].join('\n');
  const scripts = [spec.name, ...(spec.extraScripts ?? [])].map((script) => `${script} = ${pkg}.server:main`);
  const backend = [
    SDIST_BACKEND,
    `PACKAGE = ${JSON.stringify(pkg)}`,
    `ENTRY_POINTS = ${JSON.stringify(`[console_scripts]\n${scripts.join('\n')}\n`)}`,
    ...(spec.buildFails ? [`FAIL = ${JSON.stringify(spec.buildFails)}`] : []),
    ...(spec.buildProbesNetwork ? [`PROBE = ${JSON.stringify(spec.buildProbesNetwork)}`] : []),
    '',
  ].join('\n');
  const files: Array<[string, string]> = [
    [`${dist}/PKG-INFO`, pkgInfo],
    [`${dist}/pyproject.toml`, pyproject],
    [`${dist}/backend.py`, backend],
    [`${dist}/${pkg}/__init__.py`, ''],
    [`${dist}/${pkg}/server.py`, serverSource(spec)],
  ];
  const filename = `${dist}.tar.gz`;
  const out = `${directory}/${filename}`;
  execFileSync('python3', ['-I', '-c', BUILD_SDIST, out], { input: JSON.stringify({ files }) });
  return { filename, bytes: execFileSync('cat', [out]) };
}

export function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

export class FixtureIndex {
  private readonly projects = new Map<string, { name: string; releases: Map<string, StoredFile[]> }>();
  private readonly files = new Map<string, StoredFile>();
  /** Paths requested, in order (what a test may assert was or was not fetched). */
  readonly requests: string[] = [];

  private constructor(
    private readonly server: http.Server,
    private readonly scratch: string,
  ) {}

  static async start(scratch: string): Promise<FixtureIndex> {
    const server = http.createServer();
    const index = new FixtureIndex(server, scratch);
    server.on('request', (request, response) => index.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return index;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The simple API's URL: what PYPI_INDEX_URL is set to. */
  get url(): string {
    return `${this.origin}/simple/`;
  }

  publish(options: IndexPublishOptions): StoredFile {
    const key = normalize(options.name);
    const project = this.projects.get(key) ?? { name: options.name, releases: new Map<string, StoredFile[]>() };
    this.projects.set(key, project);
    let filename: string;
    let bytes: Buffer;
    if (options.sdistOnly) {
      ({ filename, bytes } = buildSdist(options, this.scratch));
    } else {
      ({ filename, bytes } = buildWheel(options, this.scratch));
    }
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    const served = options.corrupt ? Buffer.concat([bytes, Buffer.from('tampered')]) : bytes;
    const file: StoredFile = {
      filename,
      bytes,
      served,
      sha256,
      uploadedAt: options.uploadedAt,
      yanked: options.yanked ?? false,
      packagetype: options.sdistOnly ? 'sdist' : 'bdist_wheel',
      requiresPython: options.requiresPython,
    };
    project.releases.set(options.version, [...(project.releases.get(options.version) ?? []), file]);
    this.files.set(filename, file);
    return file;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private fileUrl(file: StoredFile): string {
    return `${this.origin}/files/${file.filename}`;
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', this.origin);
    this.requests.push(url.pathname);
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      response.end(body);
    };
    let match = /^\/pypi\/([^/]+)\/json$/.exec(url.pathname);
    if (match) {
      const project = this.projects.get(normalize(decodeURIComponent(match[1]!)));
      if (!project) return send(404, 'application/json', '{"message":"Not Found"}');
      const releases = Object.fromEntries(
        [...project.releases].map(([version, files]) => [
          version,
          files.map((file) => ({
            filename: file.filename,
            url: this.fileUrl(file),
            digests: { sha256: file.sha256 },
            upload_time_iso_8601: file.uploadedAt.toISOString(),
            yanked: file.yanked,
            packagetype: file.packagetype,
            requires_python: file.requiresPython ?? null,
            size: file.bytes.length,
          })),
        ]),
      );
      const versions = [...project.releases.keys()];
      return send(200, 'application/json', JSON.stringify({ info: { name: project.name, version: versions.at(-1) }, releases }));
    }
    match = /^\/simple\/([^/]+)\/?$/.exec(url.pathname);
    if (match) {
      const project = this.projects.get(normalize(decodeURIComponent(match[1]!)));
      if (!project) return send(404, 'text/html', 'not found');
      const files = [...project.releases.values()].flat();
      if ((request.headers.accept ?? '').includes('application/vnd.pypi.simple.v1+json')) {
        return send(
          200,
          'application/vnd.pypi.simple.v1+json',
          JSON.stringify({
            meta: { 'api-version': '1.0' },
            name: normalize(project.name),
            files: files.map((file) => ({
              filename: file.filename,
              url: this.fileUrl(file),
              hashes: { sha256: file.sha256 },
              ...(file.requiresPython ? { 'requires-python': file.requiresPython } : {}),
              ...(file.yanked ? { yanked: true } : {}),
            })),
          }),
        );
      }
      const links = files.map((file) => {
        const attributes = [
          `href="${this.fileUrl(file)}#sha256=${file.sha256}"`,
          ...(file.requiresPython ? [`data-requires-python="${file.requiresPython.replace(/</g, '&lt;').replace(/>/g, '&gt;')}"`] : []),
          ...(file.yanked ? ['data-yanked=""'] : []),
        ];
        return `<a ${attributes.join(' ')}>${file.filename}</a><br/>`;
      });
      return send(200, 'text/html', `<!DOCTYPE html><html><body>\n${links.join('\n')}\n</body></html>\n`);
    }
    match = /^\/files\/([^/]+)$/.exec(url.pathname);
    const file = match ? this.files.get(decodeURIComponent(match[1]!)) : undefined;
    if (file) return send(200, 'application/octet-stream', file.served);
    send(404, 'text/plain', 'not found');
  }
}
