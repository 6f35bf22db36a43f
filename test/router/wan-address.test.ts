import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyWanAddress } from '../../src/router/wan-address.js';

describe('classifyWanAddress', () => {
  it('tells public addresses from those behind another NAT', () => {
    assert.equal(classifyWanAddress('203.0.114.1'), 'public');
    assert.equal(classifyWanAddress('8.8.8.8'), 'public');
    assert.equal(classifyWanAddress('10.0.0.1'), 'private');
    assert.equal(classifyWanAddress('172.31.255.255'), 'private');
    assert.equal(classifyWanAddress('172.32.0.1'), 'public');
    assert.equal(classifyWanAddress('192.168.1.1'), 'private');
    assert.equal(classifyWanAddress('100.64.0.1'), 'cgnat');
    assert.equal(classifyWanAddress('100.127.255.254'), 'cgnat');
    assert.equal(classifyWanAddress('100.128.0.1'), 'public');
    assert.equal(classifyWanAddress('127.0.1.1'), 'loopback');
    assert.equal(classifyWanAddress('203.0.113.5'), 'reserved');
    assert.equal(classifyWanAddress('0.0.0.0'), 'reserved');
    assert.equal(classifyWanAddress('not an address'), 'unknown');
    assert.equal(classifyWanAddress('2001:db8::1'), 'unknown');
  });
});
