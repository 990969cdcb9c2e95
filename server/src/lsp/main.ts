/** Entry point of the bundled server (dist/server.js), which the VS Code client starts over IPC. */
import { startServer } from './server';

startServer();
