/*
 * What a staging run is asked to produce, shared by every staging step.
 */
import type { ServerSettings } from '../../shared/inventory.js';
import type { VersionRecord } from '../../shared/layout.js';
import type { ProvenanceSource } from '../../shared/provenance.js';

export interface StageRequest {
  server: string;
  package: string;
  version: string;
  integrity: string;
  /** Names the staging directory, so two jobs for one version never share one. */
  jobId: string;
  settings: ServerSettings;
  /** The verified provenance source check found, recorded in version.json. */
  provenance?: ProvenanceSource;
}

export interface StagedVersion {
  dir: string;
  record: VersionRecord;
  reused: boolean;
}

/** "package@version" for messages. */
export function label(request: Pick<StageRequest, 'package' | 'version'>): string {
  return `${request.package}@${request.version}`;
}
