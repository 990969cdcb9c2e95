/** Runs the CLI in this process with captured output, as a script would see it. */
import { main } from '../../server/src/cli/main';

export async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), version: 'test' });
  return { code, stdout, stderr };
}
