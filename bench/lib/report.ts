/*
 * The results of one bench run: the targets judged against the figures (reported, never
 * asserted: `npm test` does not run the bench) and the markdown table for the README.
 */
import type { CliResults } from '../scenarios/cli.js';
import type { DiskResults } from '../scenarios/disk.js';
import type { HttpResults } from '../scenarios/http.js';
import type { IdleResults } from '../scenarios/idle.js';
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
  /** Whether the worker's smoke tests run in bubblewrap, and if not why (shared/sandbox.ts). */
  smokeTestSandbox: { sandboxed: boolean; reason?: string };
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
    cli?: CliResults;
    idle?: IdleResults;
    disk?: DiskResults;
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

/** The targets of issue 15 (and the HTTP ones before it), for whichever scenarios ran. A run with failures never meets one. */
export function evaluateTargets(scenarios: BenchResults['scenarios']): Target[] {
  const targets: Target[] = [];
  const { raw, sweep, pipeline, peer, http, cli, idle, disk } = scenarios;
  if (sweep && raw) {
    for (const [label, run] of [
      ['first sweep', sweep.cold],
      ['steady-state sweep', sweep.warm],
    ] as const) {
      const clean = (run.results['up-to-date'] ?? 0) === run.checks;
      const ratio = round((run.checksPerSecond / raw.single.perSecond) * 100, 1);
      targets.push(atLeast('2', `check sweep, ${label}: share of raw BullMQ`, clean ? ratio : 0, '%', 25));
    }
  }
  if (pipeline && raw) {
    const ratio = round((pipeline.update.updatesPerSecond / raw.chain.perSecond) * 100, 1);
    targets.push(atLeast('3', 'full pipeline: share of the raw four-stage chain', pipeline.update.failed === 0 ? ratio : 0, '%', 7));
  }
  if (peer) {
    const clean = peer.ours.failed === 0 && peer.oursNoSmokeTest.failed === 0;
    targets.push(atLeast('5', 'faster than the npm loop (default settings: smoke tests on)', clean ? peer.speedup : 0, '×', 10));
  }
  if (http) {
    const ok = (endpoint: HttpResults['health']) => endpoint.non2xx === 0 && endpoint.errors === 0;
    targets.push(atLeast('6', '`/health`', ok(http.health) ? http.health.requestsPerSecond : 0, 'req/s', 10_000));
    targets.push(atMost('6', '`/health` p99 latency', http.health.latencyMs.p99, 'ms', 20));
    targets.push(
      atLeast(
        '6',
        `\`/api/v1/servers\` (${http.servers} servers)`,
        ok(http.servers_list) ? http.servers_list.requestsPerSecond : 0,
        'req/s',
        2_000,
      ),
    );
    targets.push(atMost('6', '`/api/v1/servers` p99 latency', http.servers_list.latencyMs.p99, 'ms', 20));
  }
  if (sweep) targets.push(atMost('2', 'worker peak RSS during the sweep', sweep.worker.peakRssMb, 'MB', 150));
  if (cli) {
    targets.push(atMost('7', '`mcp-updater servers` wall', cli.compiled.servers.wallMs.p50, 'ms', 250));
    targets.push(atMost('7', '`mcp-updater servers` peak RSS', cli.compiled.servers.peakRssMb.p50, 'MB', 80));
    targets.push(atMost('7', '`mcp-updater --help` wall', cli.compiled.help.wallMs.p50, 'ms', 150));
    targets.push(atMost('7', '`mcp-updater --help` peak RSS', cli.compiled.help.peakRssMb.p50, 'MB', 80));
  }
  if (idle) targets.push(atMost('8', 'all-in-one service idle RSS', idle.allInOne.rssMb.max, 'MB', 120));
  if (disk) targets.push(atMost('9', 'disk: share of full copies', disk.ratioPercent, '%', 35));
  return targets;
}

const number = (value: number, digits = 0) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : '—';

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((cells) => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`),
  ];
}

/**
 * Three tables: the figures against the raw baselines measured in the same run (they carry from
 * one machine to another), the absolute figures of this machine, and where the CPU went.
 */
export function renderMarkdown(results: BenchResults): string {
  const { raw, sweep, pipeline, smokeTest, peer, http, cli, idle, disk } = results.scenarios;
  const m = results.machine;
  const target = (measure: string, scenario: string) => results.targets.find((t) => t.scenario === scenario && t.measure === measure);
  const judged = (t?: Target): [string, string] => (t ? [t.target, t.met ? 'met' : '**not met**'] : ['', '']);

  const ratios: string[][] = [];
  const ratio = (scenario: string, what: string, result: string, t?: Target) => ratios.push([scenario, what, result, ...judged(t)]);
  if (sweep && raw) {
    for (const [label, run] of [
      ['first sweep (empty packument cache)', sweep.cold],
      ['steady-state sweep (registry answers 304)', sweep.warm],
    ] as const) {
      const t = target(`check sweep, ${label.replace(/ \(.*\)$/, '')}: share of raw BullMQ`, '2');
      ratio(
        '2',
        `Check sweep, ${number(sweep.servers)} servers, ${label}, against raw BullMQ on one queue`,
        `${number(t?.value ?? (run.checksPerSecond / raw.single.perSecond) * 100, 1)} %`,
        t,
      );
    }
  }
  if (pipeline && raw) {
    const t = target('full pipeline: share of the raw four-stage chain', '3');
    ratio(
      '3',
      `Full pipeline, ${number(pipeline.servers)} tiny updates (no smoke test), against the raw four-stage chain`,
      `${number(t?.value ?? 0, 1)} %`,
      t,
    );
  }
  if (peer) {
    ratio(
      '5',
      `${peer.servers} updates with smoke tests on, against an \`npm install\` loop`,
      `${number(peer.speedup, 1)}× faster`,
      target('faster than the npm loop (default settings: smoke tests on)', '5'),
    );
    ratio('5', '… smoke tests off (the same work as npm)', `${number(peer.speedupNoSmokeTest, 1)}× faster`);
  }
  if (cli) {
    ratio(
      '7',
      '`mcp-updater servers`, compiled, against the same through tsx (0.1.0)',
      `${number(cli.tsx.servers.wallMs.p50 / cli.compiled.servers.wallMs.p50, 1)}× faster, ${number((cli.compiled.servers.peakRssMb.p50 / cli.tsx.servers.peakRssMb.p50) * 100)} % of the memory`,
    );
    ratio(
      '7',
      '`mcp-updater --help`, the same comparison',
      `${number(cli.tsx.help.wallMs.p50 / cli.compiled.help.wallMs.p50, 1)}× faster, ${number((cli.compiled.help.peakRssMb.p50 / cli.tsx.help.peakRssMb.p50) * 100)} % of the memory`,
    );
  }
  if (disk) {
    ratio(
      '9',
      `Disk: ${disk.servers} servers × ${disk.versions} versions, keep ${disk.keep}, after cleanup: bytes on disk against the same versions as full copies`,
      `${number(disk.ratioPercent, 1)} %`,
      target('disk: share of full copies', '9'),
    );
  }

  const absolute: string[][] = [];
  const row = (scenario: string, what: string, result: string, t?: Target) => absolute.push([scenario, what, result, ...judged(t)]);
  if (raw) {
    row('1', `Raw BullMQ: ${number(raw.single.jobs)} no-op jobs, 1 queue, concurrency 50`, `${number(raw.single.perSecond)} jobs/s`);
    row(
      '1',
      `Raw BullMQ: ${number(raw.chain.jobs)} four-stage no-op chains (each stage adds the next job)`,
      `${number(raw.chain.perSecond)} chains/s`,
    );
  }
  if (sweep) {
    row(
      '2',
      `Check sweep, ${number(sweep.servers)} servers (a package each), nothing to update: first / steady-state sweep`,
      `${number(sweep.cold.checksPerSecond)} / ${number(sweep.warm.checksPerSecond)} checks/s`,
    );
    row('2', '… worker peak RSS (VmHWM)', `${number(sweep.worker.peakRssMb)} MB`, target('worker peak RSS during the sweep', '2'));
  }
  if (pipeline) {
    const u = pipeline.update;
    row(
      '3',
      `Full pipeline, ${number(pipeline.servers)} servers, each 1.0.0 → 1.1.0 (tiny package, no smoke test), check → activated`,
      `${number(u.updatesPerSecond, 1)} updates/s`,
    );
    row('3', '… first install of the same servers', `${number(pipeline.install.updatesPerSecond, 1)} installs/s`);
    row('3', '… worker peak RSS', `${number(pipeline.worker.peakRssMb)} MB`);
  }
  if (smokeTest) {
    const u = smokeTest.update;
    row(
      '4',
      `Full pipeline with smoke tests, ${number(smokeTest.servers)} servers (fixture MCP server)`,
      `${number(u.updatesPerSecond, 1)} updates/s`,
    );
    row('4', '… stage time (job processedOn → finishedOn), p50 / p95', `${number(u.stageMs.p50)} / ${number(u.stageMs.p95)} ms`);
    row('4', '… worker peak RSS', `${number(smokeTest.worker.peakRssMb)} MB`);
  }
  if (peer) {
    row(
      '5',
      `npm loop: \`npm install --prefix <dir> <pkg>@<version>\` × ${peer.servers}, one after another`,
      `${number(peer.npm.seconds, 2)} s (${number(peer.npm.perInstallMs.p50)} ms each)`,
    );
    row(
      '5',
      `mcp-updater, the same ${peer.servers} updates: smoke tests on / off`,
      `${number(peer.ours.seconds, 2)} / ${number(peer.oursNoSmokeTest.seconds, 2)} s`,
    );
  }
  if (http) {
    for (const [endpoint, label, measure] of [
      [http.health, '`GET /health`', '`/health`'],
      [http.servers_list, `\`GET /api/v1/servers\`, ${number(http.servers)} servers`, `\`/api/v1/servers\` (${http.servers} servers)`],
    ] as const) {
      row(
        '6',
        `${label}, autocannon ${endpoint.connections} connections × ${endpoint.seconds} s`,
        `${number(endpoint.requestsPerSecond)} req/s`,
        target(measure, '6'),
      );
      row(
        '6',
        '… latency p50 / p99',
        `${number(endpoint.latencyMs.p50)} / ${number(endpoint.latencyMs.p99)} ms`,
        target(`${measure.replace(/ \(.*\)$/, '')} p99 latency`, '6'),
      );
    }
  }
  if (cli) {
    for (const [name, label] of [
      ['servers', `\`mcp-updater servers\` (${cli.servers} servers)`],
      ['help', '`mcp-updater --help`'],
    ] as const) {
      const run = cli.compiled[name];
      const old = cli.tsx[name];
      row(
        '7',
        `${label}, p50 of ${cli.runs} runs: wall (through tsx: ${number(old.wallMs.p50)} ms)`,
        `${number(run.wallMs.p50)} ms`,
        target(`${label.replace(/ \(.*\)$/, '')} wall`, '7'),
      );
      row(
        '7',
        `… peak RSS (through tsx: ${number(old.peakRssMb.p50)} MB)`,
        `${number(run.peakRssMb.p50)} MB`,
        target(`${label.replace(/ \(.*\)$/, '')} peak RSS`, '7'),
      );
    }
  }
  if (idle) {
    row(
      '8',
      `All-in-one service (\`start --role all\`), ${idle.servers} MCP servers installed, idle ${idle.idleSeconds} s: RSS p50 / max`,
      `${number(idle.allInOne.rssMb.p50)} / ${number(idle.allInOne.rssMb.max)} MB`,
      target('all-in-one service idle RSS', '8'),
    );
    row('8', '… its peak RSS, installing the three included', `${number(idle.allInOne.peakRssMb)} MB`);
    row(
      '8',
      `Worker alone (\`start --role worker\`), idle: RSS p50 / max`,
      `${number(idle.worker.rssMb.p50)} / ${number(idle.worker.rssMb.max)} MB`,
    );
  }
  if (disk) {
    row(
      '9',
      `Disk: the kept ${disk.keptVersions} version directories as full copies / on disk (each inode once; allocated blocks)`,
      `${number(disk.fullCopiesMb, 1)} / ${number(disk.onDiskMb, 1)} MB (${number(disk.allocatedMb, 1)} MB)`,
    );
  }

  const header = ['#', 'Figure', 'Result', 'Target', 'Met'];
  const lines = [
    `Measured ${results.startedAt.slice(0, 10)} with \`npm run bench\`${results.mode === 'full' ? '' : ` (${results.mode} run)`} on one machine: ${m.cpus} × ${m.cpuModel}, ${number(m.memoryGb)} GB, ${m.os}, Node ${m.node}, Redis ${m.redis}, npm ${m.npm}. `
      + 'The worker (`mcp-updater start --role worker`, default settings), Redis, the fixture registry and the load generators share the machine; '
      + `load average at start ${number(m.loadAverageAtStart, 2)}.`,
  ];
  if (ratios.length > 0)
    lines.push('', 'Against the baselines measured in the same run (these carry over to another machine):', '', ...table(header, ratios));
  if (absolute.length > 0) lines.push('', 'Absolute figures on this machine:', '', ...table(header, absolute));
  const cpuRows: string[][] = [];
  const cpuRow = (label: string, cpu: CpuUse | undefined, unit: string) => {
    if (cpu)
      cpuRows.push([
        label,
        number(cpu.workerMsPerOp, 2),
        number(cpu.redisMsPerOp, 2),
        number(cpu.benchMsPerOp, 2),
        `${number(cpu.workerCores, 2)} / ${number(cpu.totalCores, 2)}`,
        unit,
      ]);
  };
  cpuRow('(2) first sweep', sweep?.cold.cpu, 'check');
  cpuRow('(2) steady-state sweep', sweep?.warm.cpu, 'check');
  cpuRow('(3) full pipeline', pipeline?.update.cpu, 'update');
  cpuRow('(4) pipeline with smoke tests', smokeTest?.update.cpu, 'update');
  if (cpuRows.length > 0) {
    lines.push(
      '',
      ...table(
        ['Where the CPU went', 'worker ms (with its smoke tests)', 'Redis ms', 'registry + bench ms', 'cores: worker / all', 'per'],
        cpuRows,
      ),
    );
    if (smokeTest?.update.cpu) {
      // A sandboxed candidate's CPU is lost to the worker's count: bwrap's inner init is reparented.
      const sandbox = m.smokeTestSandbox;
      lines.push(
        '',
        sandbox.sandboxed
          ? 'Smoke tests ran sandboxed (bubblewrap): the worker figure of (4) leaves out the candidates, whose processes bwrap hands to init.'
          : `Smoke tests ran unsandboxed (${sandbox.reason}): the worker figure of (4) includes the candidates' CPU.`,
      );
    }
  }
  if (Object.keys(results.errors).length > 0) {
    lines.push(
      '',
      'Scenarios that failed to run:',
      ...Object.entries(results.errors).map(([name, error]) => `- ${name}: ${error.split('\n')[0]}`),
    );
  }
  return `${lines.join('\n')}\n`;
}
