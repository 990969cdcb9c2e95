/**
 * The worker thread that runs source estimates, as the language server sees it: one estimate at a
 * time, queued per document, so that a newer request for a document replaces its queued one and
 * supersedes its running one (the worker stops at its next step and nothing stale comes back). The
 * worker's progress is relayed to the editor. A worker that stops (a crash, running out of memory)
 * is logged and started again; the estimate it was running is retried once.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EstimateReport } from '../source/estimateSource';
import type { EstimateReply, EstimateRequest } from './estimateJob';
import type { EstimateWorkerData } from './estimateWorker';

/** A progress indicator in the editor, begun by the host. */
export interface ProgressHandle {
  report(message: string, percentage: number): void;
  done(): void;
}

export interface EstimateThreadHost {
  log(message: string): void;
  /** Every open editor buffer, by resolved path, so that unsaved headers stand in for files. */
  openBuffers(): Map<string, string>;
  /** Begins a progress indicator; undefined when the client cannot show one. */
  beginProgress(title: string): Promise<ProgressHandle | undefined>;
  /** The worker's script; by default estimateWorker.js beside this module (or beside the bundle). */
  workerScript?: string;
}

/** What an estimate needs besides what the thread adds (its id, the buffers, whether to index first). */
export type EstimateInput = Omit<EstimateRequest, 'kind' | 'id' | 'openBuffers' | 'indexHeadersFirst'>;

export interface EstimateResult {
  /** The text that was estimated. */
  text: string;
  report: EstimateReport;
  /** Every file the run read. */
  dependencies: string[];
}

interface Job {
  key: string;
  makeInput: () => EstimateInput | undefined;
  resolve: (result: EstimateResult | undefined) => void;
  /** Runs cut short by the worker stopping. */
  crashes: number;
}

interface RunningJob extends Job {
  id: number;
  input: EstimateInput;
  superseded: boolean;
  progress?: Promise<ProgressHandle | undefined>;
}

/** Restarts after a worker that keeps stopping wait longer each time, up to this. */
const MAX_RESTART_DELAY_MS = 10_000;

export class EstimateThread {
  private worker: Worker | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Stops in a row without a finished estimate between them. */
  private stopsInARow = 0;
  private readonly queue = new Map<string, Job>();
  private running: RunningJob | undefined;
  private nextId = 1;
  private readonly supersededCell = new Int32Array(new SharedArrayBuffer(4));
  /** The buffers as this worker last got them, so that each request carries only what changed. */
  private readonly sentBuffers = new Map<string, string>();
  /** Documents this worker has estimated, so their headers are indexed: a later run needs no progress. */
  private readonly indexed = new Set<string>();
  private disposed = false;

  constructor(private readonly host: EstimateThreadHost) {}

  /**
   * Queues an estimate of `key` (replacing one still queued); `makeInput` is called when its turn
   * comes, so that it carries the latest text. Resolves with the result, or undefined when the
   * estimate was superseded, failed or dropped.
   */
  estimate(key: string, makeInput: () => EstimateInput | undefined): Promise<EstimateResult | undefined> {
    this.dropQueued(key);
    return new Promise((resolve) => {
      this.queue.set(key, { key, makeInput, resolve, crashes: 0 });
      this.pump();
    });
  }

  /** A newer change made the queued or running estimate of `key` stale. */
  supersede(key: string): void {
    this.dropQueued(key);
    if (this.running?.key === key && !this.running.superseded) {
      this.running.superseded = true;
      Atomics.store(this.supersededCell, 0, this.running.id);
    }
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.restartTimer);
    for (const key of [...this.queue.keys()]) this.dropQueued(key);
    if (this.running) this.finish(this.running, undefined);
    void this.worker?.terminate();
    this.worker = undefined;
  }

  private dropQueued(key: string): void {
    const queued = this.queue.get(key);
    if (!queued) return;
    this.queue.delete(key);
    queued.resolve(undefined);
  }

  /** Sends the next queued estimate when the worker is free. */
  private pump(): void {
    if (this.disposed || this.running || this.restartTimer) return;
    for (const [key, job] of this.queue) {
      this.queue.delete(key);
      const input = job.makeInput();
      if (!input) {
        job.resolve(undefined);
        continue;
      }
      const worker = this.worker ?? this.startWorker();
      if (!worker) {
        this.queue.set(key, job);
        return;
      }
      const running: RunningJob = { ...job, id: this.nextId++, input, superseded: false };
      this.running = running;
      const request: EstimateRequest = {
        kind: 'estimate',
        id: running.id,
        ...input,
        indexHeadersFirst: !this.indexed.has(key),
        openBuffers: this.changedBuffers(),
      };
      worker.ref();
      worker.postMessage(request);
      return;
    }
  }

  private changedBuffers(): [string, string | null][] {
    const current = this.host.openBuffers();
    const changes: [string, string | null][] = [];
    for (const [filePath, text] of current) if (this.sentBuffers.get(filePath) !== text) changes.push([filePath, text]);
    for (const filePath of this.sentBuffers.keys()) if (!current.has(filePath)) changes.push([filePath, null]);
    for (const [filePath, text] of changes) {
      if (text === null) this.sentBuffers.delete(filePath);
      else this.sentBuffers.set(filePath, text);
    }
    return changes;
  }

  private startWorker(): Worker | undefined {
    const script = this.host.workerScript ?? path.join(__dirname, 'estimateWorker.js');
    const workerData: EstimateWorkerData = { superseded: this.supersededCell.buffer as SharedArrayBuffer };
    let worker: Worker;
    try {
      worker = new Worker(script, { workerData });
    } catch (error) {
      this.stopped(undefined, `cannot start ${script}: ${String(error)}`);
      return undefined;
    }
    // Only a running estimate keeps the process alive: an idle worker must not keep a finished server from exiting.
    worker.unref();
    let failure: string | undefined;
    worker.on('message', (reply: EstimateReply) => this.received(reply));
    worker.on('error', (error) => (failure = error.stack ?? String(error)));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.stopped(code, failure);
    });
    this.worker = worker;
    return worker;
  }

  private received(reply: EstimateReply): void {
    const running = this.running;
    if (!running || reply.id !== running.id) return;
    switch (reply.kind) {
      case 'progress-begin':
        running.progress = this.host.beginProgress(reply.title);
        return;
      case 'progress-report':
        void running.progress?.then((progress) => progress?.report(reply.message, reply.percentage));
        return;
      case 'progress-end':
        this.endProgress(running);
        return;
      case 'estimated':
        this.stopsInARow = 0;
        this.indexed.add(running.key);
        this.finish(running, running.superseded ? undefined : { text: running.input.text, report: reply.report, dependencies: reply.dependencies });
        return;
      case 'superseded':
        this.finish(running, undefined);
        return;
      case 'failed':
        this.host.log(`${running.input.filePath}: cannot estimate: ${reply.error}`);
        this.finish(running, undefined);
        return;
    }
  }

  private endProgress(running: RunningJob): void {
    void running.progress?.then((progress) => progress?.done());
    running.progress = undefined;
  }

  private finish(running: RunningJob, result: EstimateResult | undefined): void {
    this.endProgress(running);
    if (this.running === running) this.running = undefined;
    this.worker?.unref();
    running.resolve(result);
    this.pump();
  }

  /** The worker is gone: say so, retry what it was running once, and start another after a pause that grows while it keeps stopping. */
  private stopped(exitCode: number | undefined, failure: string | undefined): void {
    this.worker = undefined;
    this.sentBuffers.clear();
    this.indexed.clear();
    if (this.disposed) return;
    const running = this.running;
    const what = running ? ` while estimating ${running.input.filePath}` : '';
    this.host.log(`the source-estimate worker stopped${what} (exit code ${exitCode ?? 'none'})${failure ? `: ${failure}` : ''}; starting a new one`);
    if (running) {
      this.running = undefined;
      this.endProgress(running);
      if (running.superseded || running.crashes >= 1) {
        if (!running.superseded) this.host.log(`${running.input.filePath}: not estimated, the worker stopped on it twice; the next change tries again`);
        running.resolve(undefined);
      } else if (!this.queue.has(running.key)) {
        // First in line again: a Map keeps insertion order, so rebuild it with the retry in front.
        const rest = [...this.queue];
        this.queue.clear();
        this.queue.set(running.key, { key: running.key, makeInput: running.makeInput, resolve: running.resolve, crashes: running.crashes + 1 });
        for (const [key, job] of rest) this.queue.set(key, job);
      } else {
        running.resolve(undefined);
      }
    }
    const delay = this.stopsInARow === 0 ? 0 : Math.min(100 * 2 ** this.stopsInARow, MAX_RESTART_DELAY_MS);
    this.stopsInARow++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.pump();
    }, delay);
  }
}
