import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { ChangeMap, ChangeName, ChangeSource } from './changes.js';

type Listener<K extends ChangeName> = (change: ChangeMap[K], source: ChangeSource) => void;

/** `state` listeners keep the in-memory state; `render` listeners, run after them, write frames. */
export type ListenerStage = 'state' | 'render';

/**
 * Where committed changes go. A service publishes a change right after its commit; the bus
 * applies it here at once (state first, then frames for this instance's connections), and, when
 * several instances run, carries it to the others, which apply it the same way. Every instance
 * thus keeps its own state current and renders its own connections' personal frames.
 *
 * Listeners run synchronously in publish order, which for messages is commit order.
 */
export abstract class FanoutBus {
  private readonly listeners: Record<ListenerStage, Map<ChangeName, Listener<never>[]>> = { state: new Map(), render: new Map() };

  /** This process among the instances (in session ids, presence and the bus's envelopes). */
  readonly instanceId = randomUUID().replace(/-/g, '').slice(0, 12);

  /** True when changes cross instances (Redis): gaps can happen and are repaired. */
  abstract readonly clustered: boolean;

  on<K extends ChangeName>(name: K, listener: Listener<K>, stage: ListenerStage = 'render'): void {
    const map = this.listeners[stage];
    map.set(name, [...(map.get(name) ?? []), listener as Listener<never>]);
  }

  /** Applies a committed change on this instance, and announces it to the others. */
  publish<K extends ChangeName>(name: K, change: ChangeMap[K]): void {
    this.dispatch(name, change, { local: true });
    this.transmit(name, change);
  }

  /** Called when the instances may have missed changes (the bus was cut): reload and refill. */
  onResync: () => void = () => undefined;

  /** Runs the listeners of a change, from here or from another instance. */
  protected dispatch<K extends ChangeName>(name: K, change: ChangeMap[K], source: ChangeSource): void {
    for (const stage of ['state', 'render'] as const) {
      for (const l of this.listeners[stage].get(name) ?? []) (l as Listener<K>)(change, source);
    }
  }

  /** Carries a change to the other instances (nothing to do for one instance). */
  protected abstract transmit<K extends ChangeName>(name: K, change: ChangeMap[K]): void;
}

/** One instance: changes stay in process. */
@Injectable()
export class LocalFanoutBus extends FanoutBus {
  readonly clustered = false;

  protected transmit(): void {
    // nobody else to tell
  }
}
