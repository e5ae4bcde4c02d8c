/*
 * check for pypi servers: the index's JSON API answer and the interpreter's wheel tags, judged
 * by shared/ecosystems/pypiPolicy.ts (docs/ARCHITECTURE.md "Ecosystems").
 */
import { pypiIndexFor } from '../../shared/ecosystems/pypiIndex.js';
import { choosePypiCandidate } from '../../shared/ecosystems/pypiPolicy.js';
import { pythonInterpreter } from '../../shared/ecosystems/python.js';
import type { ServerSettings } from '../../shared/inventory.js';
import type { CandidateDecision } from '../../shared/policy.js';
import type { WorkerContext } from '../context.js';

export interface DecisionInput {
  current?: string;
  now: Date;
  exclude: Iterable<string>;
  /** After a rollback down: stay at or below this version until a newer one exists. */
  hold?: string;
}

/** Ask the index (and the interpreter), then return the decision over what they said. */
export async function pypiDecider(context: WorkerContext, settings: ServerSettings): Promise<(input: DecisionInput) => CandidateDecision> {
  const [index, interpreter] = await Promise.all([pypiIndexFor(context.config), pythonInterpreter()]);
  const project = await index.project(settings.package);
  return ({ current, now, exclude, hold }) =>
    choosePypiCandidate({
      project,
      current,
      settings: { ...settings, allowSdist: settings.python?.allowSdist ?? false },
      now,
      exclude,
      hold,
      supportedTags: interpreter.tags,
      fileProblem: (url) => index.fileProblem(url),
    });
}
