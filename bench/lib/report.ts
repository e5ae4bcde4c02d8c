/*
 * The results of one bench run: the targets judged against the figures (reported, never
 * asserted: `npm test` does not run the bench) and the markdown table for the README.
 */
import type { HttpResults } from '../scenarios/http.js';
import type { PeerResults } from '../scenarios/peer.js';
import type { PipelineResults } from '../scenarios/pipeline.js';
import type { RawResults } from '../scenarios/raw.js';
import type { SweepResults } from '../scenarios/sweep.js';
import type { CpuUse } from './cpuMeter.js';
import type { ProfileSummary } from './cpuProfile.js';
import { round } from './measure.js';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  node: string;
  npm: string;
  redis: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadAverageAtStart: number;
}

export interface BenchResults {
  mode: 'full' | 'smoke' | 'partial' | 'profiled';
  startedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  scenarios: {
    raw?: RawResults;
    sweep?: SweepResults;
    pipeline?: PipelineResults;
    smokeTest?: PipelineResults;
    peer?: PeerResults;
    http?: HttpResults;
  };
  /** Scenarios that failed to run, with the error. */
  errors: Record<string, string>;
  targets: Target[];
  profiles?: Record<string, ProfileSummary>;
}

export interface Target {
  scenario: string;
  measure: string;
  value: number;
  unit: string;
  /** "≥ 2000" */
  target: string;
  met: boolean;
}

function atLeast(scenario: string, measure: string, value: number, unit: string, minimum: number): Target {
  const suffix = unit === '%' ? ' %' : unit === '×' ? '×' : '';
  return { scenario, measure, value, unit, target: `≥ ${minimum.toLocaleString('en-US')}${suffix}`, met: value >= minimum };
}

function atMost(scenario: string, measure: string, value: number, unit: string, maximum: number): Target {
  return { scenario, measure, value, unit, target: `≤ ${maximum.toLocaleString('en-US')} ${unit}`, met: value <= maximum };
}

/** The targets of the brief, for whichever scenarios ran. A run with failures never meets one. */
export function evaluateTargets(scenarios: BenchResults['scenarios']): Target[] {
  const targets: Target[] = [];
  const { raw, sweep, pipeline, smokeTest, peer, http } = scenarios;
  if (sweep) {
    for (const [label, run] of [['first sweep', sweep.cold], ['steady-state sweep', sweep.warm]] as const) {
      const clean = (run.results['up-to-date'] ?? 0) === run.checks;
      targets.push({ ...atLeast('2', `check sweep, ${label}`, clean ? run.checksPerSecond : 0, 'checks/s', 2_000) });
      if (raw) {
        const ratio = round((run.checksPerSecond / raw.single.perSecond) * 100, 1);
        targets.push(atLeast('2', `check sweep, ${label}: share of raw BullMQ`, clean ? ratio : 0, '%', 25));
      }
    }
  }
  if (pipeline) {
    targets.push(atLeast('3', 'full pipeline, check → activated', pipeline.update.failed === 0 ? pipeline.update.updatesPerSecond : 0, 'updates/s', 300));
  }
  if (peer) {
    const clean = peer.ours.failed === 0 && peer.oursNoSmokeTest.failed === 0;
    targets.push(atLeast('5', 'faster than the npm loop (default settings: smoke tests on)', clean ? peer.speedup : 0, '×', 20));
    targets.push(atLeast('5', 'faster than the npm loop (smoke tests off, the same work as npm)', clean ? peer.speedupNoSmokeTest : 0, '×', 20));
  }
  if (http) {
    const ok = (endpoint: HttpResults['health']) => endpoint.non2xx === 0 && endpoint.errors === 0;
    targets.push(atLeast('6', '`/health`', ok(http.health) ? http.health.requestsPerSecond : 0, 'req/s', 10_000));
    targets.push(atMost('6', '`/health` p99 latency', http.health.latencyMs.p99, 'ms', 20));
    targets.push(atLeast('6', `\`/api/v1/servers\` (${http.servers} servers)`, ok(http.servers_list) ? http.servers_list.requestsPerSecond : 0, 'req/s', 2_000));
    targets.push(atMost('6', '`/api/v1/servers` p99 latency', http.servers_list.latencyMs.p99, 'ms', 20));
  }
  if (sweep) targets.push(atMost('7', 'worker peak RSS during (2)', sweep.worker.peakRssMb, 'MB', 200));
  if (pipeline) targets.push(atMost('7', 'worker peak RSS during (3)', pipeline.worker.peakRssMb, 'MB', 200));
  if (smokeTest) targets.push(atMost('7', 'worker peak RSS during (4)', smokeTest.worker.peakRssMb, 'MB', 200));
  return targets;
}

const number = (value: number, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : '—');

/** One row per figure: scenario | what | result | target | met. */
export function renderMarkdown(results: BenchResults): string {
  const { raw, sweep, pipeline, smokeTest, peer, http } = results.scenarios;
  const m = results.machine;
  const rows: string[][] = [];
  const target = (measure: string, scenario: string) => results.targets.find((t) => t.scenario === scenario && t.measure === measure);
  const judged = (t?: Target): [string, string] => (t ? [t.target, t.met ? 'met' : '**not met**'] : ['', '']);
  const row = (scenario: string, what: string, result: string, t?: Target) => rows.push([scenario, what, result, ...judged(t)]);

  if (raw) {
    row('1', `Raw BullMQ: ${number(raw.single.jobs)} no-op jobs, 1 queue, concurrency 50`, `${number(raw.single.perSecond)} jobs/s`);
    row('1', `Raw BullMQ: ${number(raw.chain.jobs)} four-stage no-op chains (each stage adds the next job)`, `${number(raw.chain.perSecond)} chains/s`);
  }
  if (sweep) {
    for (const [label, run] of [['first sweep', sweep.cold], ['steady-state sweep', sweep.warm]] as const) {
      const what = `Check sweep, ${number(sweep.servers)} servers (a package each), nothing to update, ${label}`;
      row('2', `${what}${label === 'first sweep' ? ' (empty packument cache)' : ' (registry answers 304)'}`, `${number(run.checksPerSecond)} checks/s`, target(`check sweep, ${label}`, '2'));
      if (raw) {
        const t = target(`check sweep, ${label}: share of raw BullMQ`, '2');
        row('2', `… as a share of raw BullMQ (1 queue)`, `${number(t?.value ?? 0, 1)} %`, t);
      }
    }
  }
  if (pipeline) {
    const u = pipeline.update;
    row('3', `Full pipeline, ${number(pipeline.servers)} servers, each 1.0.0 → 1.1.0 (tiny package, no smoke test), check → activated`, `${number(u.updatesPerSecond, 1)} updates/s`, target('full pipeline, check → activated', '3'));
    if (raw) row('3', '… as a share of the raw four-stage chain', `${number((u.updatesPerSecond / raw.chain.perSecond) * 100, 1)} %`);
    row('3', '… first install of the same servers (for comparison)', `${number(pipeline.install.updatesPerSecond, 1)} installs/s`);
  }
  if (smokeTest) {
    const u = smokeTest.update;
    row('4', `Full pipeline with smoke tests, ${number(smokeTest.servers)} servers (fixture MCP server)`, `${number(u.updatesPerSecond, 1)} updates/s`);
    row('4', '… stage time (job processedOn → finishedOn), p50 / p95', `${number(u.stageMs.p50)} / ${number(u.stageMs.p95)} ms`);
  }
  if (peer) {
    row('5', `npm loop: \`npm install --prefix <dir> <pkg>@<version>\` × ${peer.servers}, one after another`, `${number(peer.npm.seconds, 2)} s (${number(peer.npm.perInstallMs.p50)} ms each)`);
    row('5', `mcp-updater, the same ${peer.servers} updates, default settings (smoke tests on)`, `${number(peer.ours.seconds, 2)} s → ${number(peer.speedup, 1)}× faster`, target('faster than the npm loop (default settings: smoke tests on)', '5'));
    row('5', `mcp-updater, the same ${peer.servers} updates, smoke tests off (what npm does)`, `${number(peer.oursNoSmokeTest.seconds, 2)} s → ${number(peer.speedupNoSmokeTest, 1)}× faster`, target('faster than the npm loop (smoke tests off, the same work as npm)', '5'));
  }
  if (http) {
    for (const [endpoint, label, measure] of [[http.health, '`GET /health`', '`/health`'], [http.servers_list, `\`GET /api/v1/servers\`, ${number(http.servers)} servers`, `\`/api/v1/servers\` (${http.servers} servers)`]] as const) {
      const t = target(measure, '6');
      row('6', `${label}, autocannon ${endpoint.connections} connections × ${endpoint.seconds} s`, `${number(endpoint.requestsPerSecond)} req/s`, t);
      row('6', '… latency p50 / p99', `${number(endpoint.latencyMs.p50)} / ${number(endpoint.latencyMs.p99)} ms`, target(`${measure.replace(/ \(.*\)$/, '')} p99 latency`, '6'));
    }
  }
  for (const [scenario, label, run] of [['(2)', 'the check sweep', sweep], ['(3)', 'the full pipeline', pipeline], ['(4)', 'the pipeline with smoke tests', smokeTest]] as const) {
    if (run) row('7', `Worker process peak RSS (VmHWM) during ${label} ${scenario}`, `${number(run.worker.peakRssMb)} MB`, target(`worker peak RSS during ${scenario}`, '7'));
  }

  const header = ['#', 'Scenario', 'Result', 'Target', 'Met'];
  const lines = [
    `Measured ${results.startedAt.slice(0, 10)} with \`npm run bench\`${results.mode === 'full' ? '' : ` (${results.mode} run)`} on one machine: ${m.cpus} × ${m.cpuModel}, ${number(m.memoryGb)} GB, ${m.os}, Node ${m.node}, Redis ${m.redis}, npm ${m.npm}. `
      + 'The worker (`mcp-updater start --role worker`, default settings), Redis, the fixture registry and the load generators share the machine; '
      + `load average at start ${number(m.loadAverageAtStart, 2)}.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((cells) => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`),
  ];
  const cpuRows: string[][] = [];
  const cpuRow = (label: string, cpu: CpuUse | undefined, unit: string) => {
    if (cpu) cpuRows.push([label, number(cpu.workerMsPerOp, 2), number(cpu.redisMsPerOp, 2), number(cpu.benchMsPerOp, 2), `${number(cpu.workerCores, 2)} / ${number(cpu.totalCores, 2)}`, unit]);
  };
  cpuRow('(2) first sweep', sweep?.cold.cpu, 'check');
  cpuRow('(2) steady-state sweep', sweep?.warm.cpu, 'check');
  cpuRow('(3) full pipeline', pipeline?.update.cpu, 'update');
  cpuRow('(4) pipeline with smoke tests', smokeTest?.update.cpu, 'update');
  if (cpuRows.length > 0) {
    const cpuHeader = ['Where the CPU went', 'worker ms (with its smoke tests)', 'Redis ms', 'registry + bench ms', 'cores: worker / all', 'per'];
    lines.push(
      '',
      `| ${cpuHeader.join(' | ')} |`,
      `|${cpuHeader.map(() => '---').join('|')}|`,
      ...cpuRows.map((cells) => `| ${cells.join(' | ')} |`),
    );
  }
  if (Object.keys(results.errors).length > 0) {
    lines.push('', 'Scenarios that failed to run:', ...Object.entries(results.errors).map(([name, error]) => `- ${name}: ${error.split('\n')[0]}`));
  }
  return `${lines.join('\n')}\n`;
}
