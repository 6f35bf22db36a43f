import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parsePollLine, pollLine, readAnswer } from '../../bench/poll-line.js';
import type { PollAnswer, PollSample } from '../../bench/poll-line.js';

/**
 * The poller's two parsers: the answer body (what the serving node said) and the line each
 * request becomes. The seed corpus is what they met in the test bed: frontdoor's /api/status as
 * the representative served it on the well-known port and as a follower on its own, the failover
 * label server's body, and the poller's lines (ready, a failure of each kind seen, a ping's
 * answer, good answers).
 */

// Compiled to <outDir>/test/bench/: the corpus stays in the source tree (tsc does not copy it).
const CORPUS = new URL('../../../test/bench/corpus/', import.meta.url);
const corpus = (name: string) => readFileSync(new URL(name, CORPUS), 'utf8');
const REP_BODY = corpus('status-representative.json');
const FOLLOWER_BODY = corpus('status-follower.json');
const LABEL_BODY = 'h2\n';
const BODIES = [REP_BODY, FOLLOWER_BODY, LABEL_BODY];
const LINES = corpus('poll-lines.txt').split('\n').filter((l) => l !== '');

describe('readAnswer on the corpus', () => {
  it("reads the representative's status: name, role, time in it, the nodes listed and those with a link", () => {
    assert.deepEqual(readAnswer(REP_BODY), {
      h: 'h3',
      r: 'representative',
      t: 202.34787099999994,
      n: ['h3', 'h2', 'h1'],
      l: ['h3', 'h2', 'h1'],
    });
  });

  it("reads a follower's status the same way", () => {
    const a = readAnswer(FOLLOWER_BODY);
    assert.equal(a?.h, 'h2');
    assert.equal(a?.r, 'follower');
    assert.deepEqual(a?.n?.slice().sort(), ['h1', 'h2', 'h3']);
  });

  it("a text body's first line names the host; a node listed without a link is in n only", () => {
    assert.deepEqual(readAnswer(LABEL_BODY), { h: 'h2' });
    const v = JSON.parse(REP_BODY) as { nodes: Array<{ url: string | null }> };
    v.nodes[1]!.url = null;
    assert.deepEqual(readAnswer(JSON.stringify(v))?.l, ['h3', 'h1']);
  });

  it('a body that names nobody is no answer', () => {
    for (const b of ['', '\n', '{}', '{"name":""}', '{"name":3}', '{not json']) assert.equal(readAnswer(b), undefined, JSON.stringify(b));
  });
});

describe('parsePollLine on the corpus', () => {
  it('reads good answers and failures, and skips the ready and ping lines', () => {
    const parsed = LINES.map(parsePollLine);
    assert.deepEqual(parsed.slice(0, 4), [
      undefined,
      { sent: 1443125.213, done: 1443137.234, err: 'ECONNREFUSED' },
      { sent: 1443224.392, done: 1443256.747, err: 'ENETUNREACH' },
      undefined,
    ]);
    assert.deepEqual(parsed[4], {
      sent: 1324681.071,
      done: 1324693.718,
      name: 'h3',
      role: 'representative',
      roleForMs: 318.190873,
      listed: ['h3', 'h2', 'h1'],
      linked: ['h3', 'h2', 'h1'],
    });
  });
});

/** What any parse may give: undefined or a bounded, consistent answer. */
function checkAnswer(a: PollAnswer | undefined): void {
  if (a === undefined) return;
  assert.ok(typeof a.h === 'string' && a.h.length > 0 && a.h.length <= 64);
  if (a.t !== undefined) assert.ok(Number.isFinite(a.t));
  if (a.n !== undefined) {
    assert.ok(a.n.length <= 100 && a.n.every((x) => typeof x === 'string' && x.length <= 64));
    assert.ok(a.l?.every((x) => a.n!.includes(x)));
  }
}

function checkSample(s: PollSample | undefined): void {
  if (s === undefined) return;
  assert.equal(typeof s.sent, 'number');
  assert.equal(typeof s.done, 'number');
  assert.ok((s.name === undefined) !== (s.err === undefined), 'a good answer or a failure, not both');
  for (const l of [s.listed, s.linked]) if (l !== undefined) assert.ok(l.every((x) => typeof x === 'string'));
}

/** A corpus text with a few characters replaced and perhaps cut short. */
const mutated = (seeds: readonly string[]) =>
  fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 2 })), { maxLength: 4 }), fc.option(fc.nat()))
    .map(([seed, flips, cut]) => {
      let s = seed;
      for (const [at, with_] of flips) {
        const i = at % Math.max(1, s.length);
        s = s.slice(0, i) + with_ + s.slice(i + 1);
      }
      return cut === null ? s : s.slice(0, cut % (s.length + 1));
    });

const name = fc.string({ minLength: 1, maxLength: 80 });
const statusBody = fc.record({
  name,
  role: fc.constantFrom('starting', 'follower', 'candidate', 'representative'),
  roleSinceMs: fc.double({ min: 0, max: 1e9, noNaN: true }),
  nodes: fc.array(fc.record({ name, url: fc.option(fc.webUrl()) }), { maxLength: 8 }),
});

describe('readAnswer properties', () => {
  it('any body gives undefined or a bounded answer, never a throw', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (b) => checkAnswer(readAnswer(b))), { numRuns: 3000 });
  });

  it('a mutated corpus body gives undefined or a bounded answer', () => {
    fc.assert(fc.property(mutated(BODIES), (b) => checkAnswer(readAnswer(b))), { numRuns: 2000 });
  });

  it('a status body gives its name, role, time in role, the names listed and those with a link, names cut at 64', () => {
    fc.assert(
      fc.property(statusBody, (v) => {
        const cut = (s: string) => s.slice(0, 64);
        assert.deepEqual(readAnswer(JSON.stringify(v)), {
          h: cut(v.name),
          r: v.role,
          t: v.roleSinceMs,
          n: v.nodes.map((p) => cut(p.name)),
          l: v.nodes.filter((p) => p.url !== null).map((p) => cut(p.name)),
        });
      }),
      { numRuns: 1000 },
    );
  });
});

const answer: fc.Arbitrary<PollAnswer> = fc.record(
  {
    h: fc.string({ minLength: 1, maxLength: 64 }),
    r: fc.string({ maxLength: 16 }),
    t: fc.double({ min: 0, max: 1e9, noNaN: true }),
    n: fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
    l: fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
  },
  { requiredKeys: ['h'] },
);
const time = fc.double({ min: 0, max: 1e10, noNaN: true });

describe('parsePollLine properties', () => {
  it('gives back what pollLine wrote, for good answers and failures', () => {
    fc.assert(
      fc.property(time, time, fc.oneof(answer, fc.record({ e: fc.string({ maxLength: 20 }) })), (s, d, outcome) => {
        const want: PollSample =
          'h' in outcome
            ? {
                sent: s,
                done: d,
                name: outcome.h,
                ...(outcome.r === undefined ? {} : { role: outcome.r }),
                ...(outcome.t === undefined ? {} : { roleForMs: outcome.t }),
                ...(outcome.n === undefined ? {} : { listed: outcome.n }),
                ...(outcome.l === undefined ? {} : { linked: outcome.l }),
              }
            : { sent: s, done: d, err: outcome.e };
        assert.deepEqual(parsePollLine(pollLine(s, d, outcome)), want);
      }),
      { numRuns: 2000 },
    );
  });

  it('any line, and any mutated corpus line, gives undefined or a well-formed sample', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 200 }), mutated(LINES)), (l) => checkSample(parsePollLine(l))), { numRuns: 3000 });
  });
});
