/**
 * SARIF 2.1.0 for code scanning in CI: one result per violation per kernel, located at the source
 * line the violation points at, with the chain of frames as related locations.
 */
import type { SourceLocation } from '../common/problem';
import type { ObjectReport } from '../object/analyzeObject';
import { profileLabel } from '../rules/kernelProfile';

const RULES = [
  { id: 'tail-call-depth', text: 'A function with a tail call is entered with 256 bytes or more of callers\' frames.' },
  { id: 'combined-stack', text: 'The frames of one call chain add up to more than 512 bytes.' },
  { id: 'call-depth', text: 'A call chain is more than 8 frames deep.' },
  { id: 'subprog-stack', text: 'A subprogram on the private stack needs more than 512 bytes.' },
  { id: 'tail-call-with-calls', text: 'A tail call in a program with bpf-to-bpf calls, on a kernel that does not allow the two together.' },
  { id: 'too-many-subprograms', text: 'A program calls more than 255 functions: the verifier takes at most 256 subprograms, main included.' },
];

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
            rules: RULES.map((rule) => ({ id: rule.id, shortDescription: { text: rule.text } })),
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
