/**
 * A Map whose values are computed on first access; iteration computes them all. Objects carry far
 * more tables (relocations of DWARF, line info of every instruction) than one question needs.
 */
export class LazyMap<K, V> extends Map<K, V> {
  private readonly pending = new Map<K, () => V>();

  setLazy(key: K, compute: () => V): void {
    this.pending.set(key, compute);
  }

  override get(key: K): V | undefined {
    const compute = this.pending.get(key);
    if (compute) {
      this.pending.delete(key);
      super.set(key, compute());
    }
    return super.get(key);
  }

  override has(key: K): boolean {
    return this.pending.has(key) || super.has(key);
  }

  override get size(): number {
    return this.pending.size + super.size;
  }

  private settle(): void {
    for (const key of [...this.pending.keys()]) this.get(key);
  }

  override entries(): MapIterator<[K, V]> {
    this.settle();
    return super.entries();
  }

  override keys(): MapIterator<K> {
    this.settle();
    return super.keys();
  }

  override values(): MapIterator<V> {
    this.settle();
    return super.values();
  }

  override forEach(callback: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    this.settle();
    super.forEach(callback, thisArg);
  }

  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
}
