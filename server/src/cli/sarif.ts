/**
 * SARIF 2.1.0 for code scanning in CI: one result per violation per kernel, located at the source
 * line the violation points at, with the chain of frames as related locations.
 */
import type { SourceLocation } from '../common/problem';
import type { ObjectReport } from '../object/analyzeObject';
import { profileLabel } from '../rules/kernelProfile';
import type { RuleId } from '../rules/stackRules';

/** One description per rule: a Record, so that a rule added to RuleId without one does not compile. */
const RULES: Record<RuleId, string> = {
  'tail-call-depth': "A function with a tail call is entered with 256 bytes or more of callers' frames.",
  'combined-stack': 'The frames of one call chain add up to more than 512 bytes.',
  'call-depth': 'A call chain is more than 8 frames deep.',
  'subprog-stack': 'A subprogram on the private stack needs more than 512 bytes.',
  'tail-call-with-calls': 'A program mixes tail calls with bpf-to-bpf calls on a kernel that does not allow it.',
  'too-many-subprograms': 'A program calls more than 255 functions: the verifier takes at most 256 subprograms, main included.',
  'kernel-lacks-feature':
    'A program uses what the kernel predates (a helper, may_goto, a callback passed by address, a sleepable program type), refused before or during do_check.',
  'back-edge': 'A loop entered in its middle (falling through into it from inside): refused by the control-flow check of kernels before 6.7.',
  recursion:
    'A function calls itself, directly or through others: refused as a back-edge before 6.7 and as a recursive call from 7.2, and walked until too deep or too big in between.',
};

export function toSarif(objects: ObjectReport[], version: string): object {
  const results = objects.flatMap((object) =>
    object.programs.flatMap((program) =>
      program.verdicts.flatMap((verdict) =>
        verdict.violations.map((violation) => ({
          ruleId: violation.rule,
          level: 'error',
          message: {
            text: `${violation.message} (kernel ${profileLabel({ version: verdict.kernel, jit: verdict.jit })}, program ${program.name}: ${violation.chain.join(' -> ')})`,
          },
          locations: [location(violation.source, object.path)],
          relatedLocations: violation.frames.flatMap((frame, index) =>
            frame.callSource
              ? [{ id: index, ...location(frame.callSource, object.path), message: { text: `calls ${frame.name} (${frame.roundedDepth} B)` } }]
              : [],
          ),
          properties: { kernel: verdict.kernel, jit: verdict.jit, program: program.name, object: object.path, depth: violation.depth },
        })),
      ),
    ),
  );
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'bpf-stack-lens',
            version,
            informationUri: 'https://example.invalid/bpf-stack-lens',
            rules: Object.entries(RULES).map(([id, text]) => ({ id, shortDescription: { text } })),
          },
        },
        results,
      },
    ],
  };
}

function location(source: SourceLocation | undefined, objectPath: string) {
  if (!source) return { physicalLocation: { artifactLocation: { uri: objectPath } } };
  return {
    physicalLocation: {
      artifactLocation: { uri: source.file },
      region: { startLine: source.line, startColumn: Math.max(1, source.column) },
    },
  };
}
