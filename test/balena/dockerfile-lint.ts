import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The checks hadolint would make that matter for this image, for a machine with no hadolint (not
 * in Debian) and no Docker engine. Each problem names its rule; a clean file gives [].
 */
export interface Instruction {
  line: number;
  keyword: string;
  args: string;
  stage: number;
}

export interface DockerfileProblem {
  rule: string;
  line: number;
  message: string;
}

const KNOWN = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

/** Instructions with continuation lines joined and comments dropped (also inside a continuation, as Docker does). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  let stage = -1;
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!;
    if (first.trim() === '' || first.trimStart().startsWith('#')) continue;
    const start = i;
    let full = first;
    while (full.endsWith('\\') && i + 1 < lines.length) {
      full = full.slice(0, -1);
      i++;
      const next = lines[i]!;
      if (next.trimStart().startsWith('#')) {
        full += '\\';
        continue;
      }
      full += ` ${next.trim()}`;
    }
    const m = /^\s*(\S+)\s*(.*)$/.exec(full);
    if (!m) continue;
    const keyword = m[1]!;
    if (keyword.toUpperCase() === 'FROM') stage++;
    out.push({ line: start + 1, keyword, args: m[2]!.trim(), stage });
  }
  return out;
}

function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

export interface LintContext {
  /** The repository root: COPY sources must exist there. */
  root: string;
  /** .dockerignore's text: COPY sources must be let in by it. */
  dockerignore: string;
  /** package.json has a `prepare` script, which `npm ci` would run (the build, before the sources are there). */
  hasPrepare: boolean;
}

/** Whether an allowlist .dockerignore (`*` then `!path` lines) lets `path` into the build context. */
export function letIn(dockerignore: string, path: string): boolean {
  const rules = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let included = true;
  const top = path.replace(/^\.\//, '').replace(/\/$/, '');
  for (const r of rules) {
    const neg = r.startsWith('!');
    const pat = (neg ? r.slice(1) : r).replace(/\/$/, '');
    const matches = pat === '*' || pat === '**' || pat === top || top.startsWith(`${pat}/`);
    if (matches) included = neg;
  }
  return included;
}

export function lintDockerfile(text: string, ctx: LintContext): DockerfileProblem[] {
  const problems: DockerfileProblem[] = [];
  const p = (rule: string, line: number, message: string) => problems.push({ rule, line, message });
  const ins = parseDockerfile(text);
  if (text.includes('%%')) p('template-leftover', text.slice(0, text.indexOf('%%')).split('\n').length, 'a %%...%% variable is left after rendering');

  const stages: Array<{ name: string | undefined; line: number }> = [];
  const firstReal = ins.find((i) => i.keyword.toUpperCase() !== 'ARG');
  if (firstReal?.keyword.toUpperCase() !== 'FROM') p('from-first', firstReal?.line ?? 1, 'the first instruction after ARGs must be FROM');
  const lastStage = Math.max(...ins.map((i) => i.stage));
  const pipefail = new Set<number>();

  for (const i of ins) {
    const kw = i.keyword.toUpperCase();
    if (!KNOWN.has(kw)) {
      p('unknown-instruction', i.line, `unknown instruction ${i.keyword}`);
      continue;
    }
    if (kw !== i.keyword) p('uppercase', i.line, `write ${kw}, not ${i.keyword}`);
    switch (kw) {
      case 'FROM': {
        const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
        if (!m) {
          p('from-syntax', i.line, `cannot read FROM ${i.args}`);
          break;
        }
        const image = m[1]!;
        const name = m[2];
        if (name && stages.some((s) => s.name === name)) p('stage-name', i.line, `stage ${name} twice`);
        stages.push({ name, line: i.line });
        if (stages.some((s, k) => k < stages.length - 1 && s.name === image)) break; // FROM an earlier stage
        const tag = /^[^@:]+(?::([^@]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(image);
        if (!tag) p('from-syntax', i.line, `cannot read image ${image}`);
        else if (!image.includes('@sha256:') && !/^\d+\.\d+\.\d+(-[a-z0-9.-]+)?$/.test(tag[1] ?? '')) {
          p('from-pinned', i.line, `${image}: pin a full version tag (e.g. 20.20.2-bookworm-slim), not ${tag[1] ?? 'latest'}`);
        }
        if (/(^|:)latest$/.test(image)) p('from-latest', i.line, `${image}: never latest`);
        break;
      }
      case 'SHELL':
        if (execForm(i.args)?.includes('pipefail')) pipefail.add(i.stage);
        break;
      case 'RUN': {
        const a = i.args;
        if (/\bapt-get\s+install\b/.test(a) || /\bapt\s+install\b/.test(a)) {
          if (/\bapt\s+install\b/.test(a)) p('apt-get', i.line, 'use apt-get, not apt, in scripts');
          if (!/--no-install-recommends/.test(a)) p('no-install-recommends', i.line, 'apt-get install without --no-install-recommends');
          if (!/\s-y\b|--yes\b|--assume-yes\b/.test(a)) p('apt-yes', i.line, 'apt-get install without -y');
        }
        if (/\bapt-get\s+update\b/.test(a)) {
          if (!/\bapt-get\s+install\b/.test(a)) p('apt-update-alone', i.line, 'apt-get update in a RUN of its own goes stale in the cache');
          if (!/rm -rf \/var\/lib\/apt\/lists\/\*/.test(a)) p('apt-lists', i.line, 'apt lists not removed (rm -rf /var/lib/apt/lists/*) in the same RUN');
        }
        if (/\bnpm\s+(install|i)\b/.test(a)) p('npm-ci', i.line, 'use npm ci (the lockfile), not npm install');
        if (/\bnpm\s+ci\b/.test(a)) {
          if (ctx.hasPrepare && !/--ignore-scripts/.test(a)) p('npm-ignore-scripts', i.line, 'npm ci runs `prepare` (the build) unless --ignore-scripts');
          const lockCopied = ins.some((c) => c.stage === i.stage && c.line < i.line && c.keyword.toUpperCase() === 'COPY' && /\bpackage-lock\.json\b/.test(c.args));
          if (!lockCopied) p('lockfile-first', i.line, 'npm ci before package-lock.json is copied in this stage');
        }
        if (/(^|&&|;)\s*cd\s/.test(a)) p('no-cd', i.line, 'use WORKDIR, not cd');
        if (/\bsudo\b/.test(a)) p('no-sudo', i.line, 'no sudo in an image build');
        if (/[^|]\|[^|]/.test(a) && !pipefail.has(i.stage)) p('pipefail', i.line, 'a pipe without SHELL ["/bin/bash", "-o", "pipefail", "-c"] hides failures');
        break;
      }
      case 'ADD':
        p('copy-not-add', i.line, 'use COPY (ADD fetches and unpacks)');
        break;
      case 'COPY': {
        const parts = i.args.split(/\s+/);
        const from = parts.find((x) => x.startsWith('--from='))?.slice('--from='.length);
        const paths = parts.filter((x) => !x.startsWith('--'));
        const sources = paths.slice(0, -1);
        if (sources.length === 0) p('copy-syntax', i.line, `COPY ${i.args}`);
        if (from !== undefined) {
          if (!stages.slice(0, -1).some((s) => s.name === from)) p('copy-from', i.line, `no earlier stage named ${from}`);
          break;
        }
        for (const src of sources) {
          if (!existsSync(join(ctx.root, src))) p('copy-source', i.line, `${src} does not exist in the repository`);
          else if (!letIn(ctx.dockerignore, src)) p('copy-ignored', i.line, `${src} is left out of the build context by .dockerignore`);
        }
        break;
      }
      case 'WORKDIR':
        if (!i.args.startsWith('/')) p('workdir-absolute', i.line, `WORKDIR ${i.args} is not absolute`);
        break;
    }
  }

  const final = ins.filter((i) => i.stage === lastStage);
  const cmds = ins.filter((i) => i.keyword.toUpperCase() === 'CMD');
  if (cmds.length !== 1) p('one-cmd', cmds[1]?.line ?? 1, `${cmds.length} CMD instructions; exactly one, in the last stage`);
  for (const c of cmds) {
    if (c.stage !== lastStage) p('one-cmd', c.line, 'CMD outside the last stage does nothing');
    const argv = execForm(c.args);
    if (!argv) p('cmd-exec-form', c.line, 'CMD in shell form: a shell becomes PID 1 and SIGTERM does not reach node');
    else if (argv[0] !== 'node') p('cmd-node', c.line, `CMD starts ${argv[0]}: node must be PID 1 to get SIGTERM`);
  }
  if (ins.some((i) => i.keyword.toUpperCase() === 'ENTRYPOINT')) p('no-entrypoint', 1, 'an ENTRYPOINT would stand between SIGTERM and node');
  const health = final.filter((i) => i.keyword.toUpperCase() === 'HEALTHCHECK');
  if (health.length !== 1) p('healthcheck', 1, `${health.length} HEALTHCHECK in the last stage; one`);
  else if (!/\/healthz/.test(health[0]!.args) || !/\bCMD\b/.test(health[0]!.args)) p('healthcheck', health[0]!.line, 'the HEALTHCHECK must ask /healthz');
  if (!final.some((i) => i.keyword.toUpperCase() === 'STOPSIGNAL' && i.args === 'SIGTERM')) p('stopsignal', 1, 'no STOPSIGNAL SIGTERM in the last stage');
  if (!final.some((i) => i.keyword.toUpperCase() === 'VOLUME' && /(^|[\s"[])\/data([\s"\]]|$)/.test(i.args))) p('data-volume', 1, 'no VOLUME /data in the last stage');
  return problems;
}
