import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEVICE_TYPES, type DeviceType } from '../../tools/balena/device-types.js';
import { renderDockerfileTemplate } from '../../tools/balena/dockerfile-template.js';
import { type LintContext, letIn, lintDockerfile, parseDockerfile } from './dockerfile-lint.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const template = readFileSync(`${root}/Dockerfile.template`, 'utf8');
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { scripts: Record<string, string> };
const ctx: LintContext = { root, dockerignore: readFileSync(`${root}/.dockerignore`, 'utf8'), hasPrepare: 'prepare' in pkg.scripts };
const rules = (text: string) => lintDockerfile(text, ctx).map((p) => p.rule);

/** Whether the rendered file's shell `case` takes the Raspberry Pi archive branch for its device type. */
function piBranchTaken(rendered: string): boolean {
  const run = parseDockerfile(rendered).find((i) => i.keyword === 'RUN' && i.args.includes(`case "$\{ARCH}:$\{MACHINE}" in`));
  assert.ok(run, 'no case on ARCH:MACHINE');
  const pattern = /in\s+([^)]+)\)/.exec(run.args)?.[1];
  assert.ok(pattern);
  const machine = /ARG MACHINE=(\S+)/.exec(rendered)?.[1];
  const arch = /ARG ARCH=(\S+)/.exec(rendered)?.[1];
  // The builder's shell decides: run the same case in bash with the rendered values.
  const r = spawnSync('bash', ['-c', `case "$ARCH:$MACHINE" in ${pattern}) echo pi ;; *) echo other ;; esac`], {
    env: { ARCH: arch ?? '', MACHINE: machine ?? '' },
    encoding: 'utf8',
  });
  return r.stdout.trim() === 'pi';
}

describe('Dockerfile.template', () => {
  it('uses the balena template variables, and leaves nothing unrendered for any supported device type', () => {
    assert.ok(template.includes('%%BALENA_MACHINE_NAME%%') && template.includes('%%BALENA_ARCH%%'));
    for (const d of DEVICE_TYPES) {
      const out = renderDockerfileTemplate(template, d);
      assert.ok(!out.includes('%%'), d.machine);
      assert.ok(out.includes(`ARG MACHINE=${d.machine}`) && out.includes(`ARG ARCH=${d.arch}`), d.machine);
    }
  });

  for (const d of DEVICE_TYPES) {
    it(`rendered for ${d.machine} (${d.arch}) passes every check and installs the Pi camera tools`, () => {
      const out = renderDockerfileTemplate(template, d);
      assert.deepEqual(lintDockerfile(out, ctx), []);
      assert.equal(piBranchTaken(out), true);
      // Every shell-form RUN parses as the stage's shell (bash -o pipefail) would read it.
      for (const run of parseDockerfile(out).filter((i) => i.keyword === 'RUN')) {
        const r = spawnSync('bash', ['-n', '-o', 'pipefail', '-c', run.args], { encoding: 'utf8' });
        assert.equal(r.status, 0, `line ${run.line}: ${r.stderr}`);
      }
    });
  }

  it('a non-Pi device type would skip the Raspberry Pi archive (ffmpeg only)', () => {
    const nuc: DeviceType = { machine: 'genericx86-64-ext', arch: 'amd64', label: 'x86' };
    const out = renderDockerfileTemplate(template, nuc);
    assert.equal(piBranchTaken(out), false);
    assert.deepEqual(lintDockerfile(out, ctx), []);
  });

  it('ships only dist/src, production dependencies and config, and runs node as PID 1', () => {
    const ins = parseDockerfile(renderDockerfileTemplate(template, DEVICE_TYPES[0]!));
    const last = Math.max(...ins.map((i) => i.stage));
    const copies = ins.filter((i) => i.stage === last && i.keyword === 'COPY').map((i) => i.args);
    assert.ok(copies.includes('--from=build /src/dist/src ./dist/src'));
    assert.ok(copies.includes('--from=deps /app/node_modules ./node_modules'));
    // From the build context itself only the manifests (for the dependency layer) and config/: no sources, no tests.
    const fromContext = copies.filter((c) => !c.startsWith('--from=')).map((c) => c.split(/\s+/).slice(0, -1).join(' '));
    assert.deepEqual(fromContext, ['package.json package-lock.json', 'config']);
    assert.ok(ins.some((i) => i.keyword === 'RUN' && /npm ci --omit=dev --ignore-scripts/.test(i.args)));
    assert.deepEqual(JSON.parse(ins.find((i) => i.keyword === 'CMD')!.args), ['node', 'dist/src/cli.js', 'run']);
  });

  it('the checks catch what they are for (each mutation breaks its rule)', () => {
    const good = renderDockerfileTemplate(template, DEVICE_TYPES[1]!);
    const cases: Array<[string, (t: string) => string]> = [
      ['from-pinned', (t) => t.replace('FROM node:20.20.2-bookworm-slim AS build', 'FROM node:20-bookworm-slim AS build')],
      ['from-latest', (t) => t.replace('FROM node:20.20.2-bookworm-slim AS deps', 'FROM node:latest AS deps')],
      ['no-install-recommends', (t) => t.replace('install -y --no-install-recommends ffmpeg', 'install -y ffmpeg')],
      ['apt-lists', (t) => t.replace(/&& rm -rf \/var\/lib\/apt\/lists\/\*\n\nWORKDIR/, '\n\nWORKDIR')],
      ['npm-ignore-scripts', (t) => t.replace('npm ci --ignore-scripts --no-audit', 'npm ci --no-audit')],
      ['lockfile-first', (t) => t.replace('WORKDIR /src\nCOPY package.json package-lock.json ./\n', 'WORKDIR /src\n')],
      ['one-cmd', (t) => `${t}CMD ["node", "dist/src/cli.js", "status"]\n`],
      ['cmd-exec-form', (t) => t.replace('CMD ["node", "dist/src/cli.js", "run"]', 'CMD node dist/src/cli.js run')],
      ['cmd-node', (t) => t.replace('CMD ["node", "dist/src/cli.js", "run"]', 'CMD ["npm", "start"]')],
      ['healthcheck', (t) => t.replace(/HEALTHCHECK[\s\S]*?\n\n/, '')],
      ['stopsignal', (t) => t.replace('STOPSIGNAL SIGTERM', '')],
      ['data-volume', (t) => t.replace('VOLUME /data', '')],
      ['template-leftover', (t) => `${t}LABEL x=%%BALENA_APP_NAME%%\n`],
      ['unknown-instruction', (t) => `${t}MAINTAINERS nobody\n`],
      ['copy-source', (t) => t.replace('COPY config ./config', 'COPY configs ./config')],
      ['copy-ignored', (t) => t.replace('COPY config ./config', 'COPY docs ./docs')],
      ['copy-from', (t) => t.replace('--from=deps', '--from=nowhere')],
      ['pipefail', (t) => t.replace(/SHELL \["\/bin\/bash", "-o", "pipefail", "-c"\]\nRUN mkdir/, 'RUN mkdir')],
      ['copy-not-add', (t) => t.replace('COPY config ./config', 'ADD config ./config')],
    ];
    for (const [rule, mutate] of cases) {
      const bad = mutate(good);
      assert.notEqual(bad, good, `mutation for ${rule} changed nothing`);
      assert.ok(rules(bad).includes(rule), `${rule} not caught: ${JSON.stringify(lintDockerfile(bad, ctx))}`);
    }
  });

  it('.dockerignore lets in exactly what the build copies', () => {
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'config']) assert.ok(letIn(ctx.dockerignore, p), p);
    for (const p of ['node_modules', 'dist', '.build-balena', 'test', '.git', 'docs', 'test-artifacts']) assert.ok(!letIn(ctx.dockerignore, p), p);
  });
});
