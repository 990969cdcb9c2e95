/**
 * The entry of the worker thread that runs source estimates (dist/estimateWorker.js in the bundle,
 * out/server/src/lsp/estimateWorker.js unbundled), so that indexing a large header never holds up
 * the language server's answers. The server sends one request at a time and writes the id of a
 * request it superseded into the shared cell it handed over at start; a run reads that cell
 * between its long steps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type EstimateRequest, EstimateWorkspace, runEstimateJob } from './estimateJob';

export interface EstimateWorkerData {
  /** One Int32: the id of the last request the server superseded. */
  superseded: SharedArrayBuffer;
}

const port = parentPort;
if (port) {
  const superseded = new Int32Array((workerData as EstimateWorkerData).superseded);
  const workspace = new EstimateWorkspace();
  port.on('message', (request: EstimateRequest) => {
    void runEstimateJob(
      request,
      workspace,
      (reply) => port.postMessage(reply),
      () => Atomics.load(superseded, 0) === request.id,
    );
  });
}
