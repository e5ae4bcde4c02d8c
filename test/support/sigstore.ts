/**
 * A fixture Sigstore (node:http on 127.0.0.1): @sigstore/mock's Fulcio CA (with a CT log) and
 * Rekor log behind one local server, the trusted_root.json that trusts exactly them, and
 * `attest()`, which signs an in-toto statement the way npm's provenance is signed in CI: a
 * short-lived Fulcio certificate for a CI workflow identity, a DSSE envelope, a Rekor entry
 * (built with @sigstore/sign against this server). Nothing leaves the machine.
 */
import { generateKeyPairSync, createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler, type HandlerFn } from '@sigstore/mock';
import { HashAlgorithm, PublicKeyDetails, TrustedRoot, type TransparencyLogInstance } from '@sigstore/protobuf-specs';
import { DSSEBundleBuilder, FulcioSigner, RekorWitness } from '@sigstore/sign';

/** The OIDC issuer the fixture's CI identities come from (a reserved test domain). */
export const FIXTURE_OIDC_ISSUER = 'https://oidc.fixture.test';

/** Who the fixture's Fulcio certifies: a CI workflow of a repository. */
export interface CiIdentity {
  /** `owner/repo`: Fulcio writes it as the source repository URI. */
  repository: string;
  workflow?: string;
  ref?: string;
}

function unsignedJwt(claims: Record<string, string>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

function logInstance(key: Buffer, url: string, logId?: Buffer): TransparencyLogInstance {
  return {
    baseUrl: url,
    logId: { keyId: logId ?? createHash('sha256').update(key).digest() },
    hashAlgorithm: HashAlgorithm.SHA2_256,
    publicKey: { rawBytes: key, keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256, validFor: { start: new Date(0) } },
    checkpointKeyId: undefined,
    operator: 'fixture',
  };
}

export class FixtureSigstore {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly root: TrustedRoot,
  ) {}

  static async start(): Promise<FixtureSigstore> {
    const keyPair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const ctlog = await initializeCTLog(keyPair);
    const ca = await initializeCA(keyPair, ctlog);
    const handlers = new Map<string, HandlerFn>();
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const handler = handlers.get((req.url ?? '').split('?')[0]!);
        if (!handler || req.method !== 'POST') {
          res.writeHead(404).end();
          return;
        }
        handler(Buffer.concat(chunks).toString('utf8')).then(
          ({ statusCode, response, contentType }) => {
            res.writeHead(statusCode, contentType ? { 'Content-Type': contentType } : {});
            res.end(typeof response === 'string' ? response : Buffer.from(response.buffer, response.byteOffset, response.byteLength));
          },
          () => res.writeHead(500).end(),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tlog = await initializeTLog(url, keyPair);
    const fulcio = fulcioHandler(ca);
    const rekor = rekorHandler(tlog);
    handlers.set(fulcio.path, fulcio.fn);
    handlers.set(rekor.path, rekor.fn);
    const root: TrustedRoot = {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      certificateAuthorities: [
        {
          subject: { commonName: 'fixture', organization: 'fixture' },
          uri: url,
          certChain: { certificates: [{ rawBytes: Buffer.from(ca.rootCertificate.buffer) }] },
          validFor: { start: new Date(0) },
          operator: 'fixture',
        },
      ],
      ctlogs: [logInstance(ctlog.publicKey, url, Buffer.from(ctlog.logID.buffer))],
      tlogs: [logInstance(tlog.publicKey, url)],
      timestampAuthorities: [],
    };
    return new FixtureSigstore(server, url, root);
  }

  /** The trusted_root.json that trusts this fixture's CA and logs. */
  trustedRootJson(): unknown {
    return TrustedRoot.toJSON(this.root);
  }

  /** Write the trusted root to `<dir>/trusted_root.json` and return its path (for SIGSTORE_TRUSTED_ROOT). */
  async writeTrustedRoot(dir: string): Promise<string> {
    const file = path.join(dir, 'trusted_root.json');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(file, JSON.stringify(this.trustedRootJson()));
    return file;
  }

  /** Sign `statement` as `identity`'s CI workflow would: a Fulcio certificate, DSSE, a Rekor entry. */
  async attest(statement: object, identity: CiIdentity): Promise<SerializedBundle> {
    const workflow = identity.workflow ?? '.github/workflows/release.yml';
    const ref = identity.ref ?? 'refs/heads/main';
    const token = unsignedJwt({
      iss: FIXTURE_OIDC_ISSUER,
      sub: `https://github.com/${identity.repository}/${workflow}@${ref}`,
      repository: identity.repository,
      ref,
    });
    const builder = new DSSEBundleBuilder({
      signer: new FulcioSigner({ fulcioBaseURL: this.url, identityProvider: { getToken: async () => token } }),
      witnesses: [new RekorWitness({ rekorBaseURL: this.url, entryType: 'intoto' })],
    });
    const bundle = await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' });
    return bundleToJSON(bundle);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** An npm SLSA v1 provenance statement for `name@version` built from `repository` at `commit`. */
export function provenanceStatement(options: {
  name: string;
  version: string;
  sha512Hex: string;
  repository: string;
  commit?: string;
  workflow?: string;
  ref?: string;
}): object {
  const workflow = options.workflow ?? '.github/workflows/release.yml';
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: `pkg:npm/${options.name.replace(/^@/, '%40')}@${options.version}`, digest: { sha512: options.sha512Hex } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1',
        externalParameters: {
          workflow: { ref: options.ref ?? 'refs/heads/main', repository: `https://github.com/${options.repository}`, path: workflow },
        },
        resolvedDependencies: [
          {
            uri: `git+https://github.com/${options.repository}@${options.ref ?? 'refs/heads/main'}`,
            digest: { gitCommit: options.commit ?? 'a'.repeat(40) },
          },
        ],
      },
      runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' } },
    },
  };
}
