/*
 * What a staging run is asked to produce, shared by every staging step.
 */
import type { ServerSettings } from '../../shared/inventory.js';
import type { VersionRecord } from '../../shared/layout.js';

export interface StageRequest {
  server: string;
  package: string;
  version: string;
  integrity: string;
  /** Names the staging directory, so two jobs for one version never share one. */
  jobId: string;
  settings: ServerSettings;
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
