import type { Logger } from './log.js';

/**
 * The subscribers of one kind of event: a listener that throws is logged and the others still
 * hear the event, so one broken reader cannot stop a part from telling the rest.
 */
export class Listeners<E> {
  private readonly set = new Set<(e: E) => void>();

  constructor(
    private readonly log: Logger,
    /** Names the part in the log line of a listener that threw. */
    private readonly what: string,
  ) {}

  /** Returns the unsubscriber. */
  add(listener: (e: E) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }

  emit(e: E): void {
    for (const l of this.set) {
      try {
        l(e);
      } catch (err) {
        this.log.error(`${this.what} listener failed`, { error: err });
      }
    }
  }
}
