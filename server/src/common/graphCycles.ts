/**
 * The first edge of a directed graph that goes back into the chain a depth-first walk is on (a
 * cycle), walking from each node in index order and taking each node's edges in order. The object
 * side asks it whether a program's calls recurse at all, the rules which call 7.2's check of the call
 * graph names ("recursive call from pong() to ping()"); both over a few hundred functions at most.
 */
export function firstEdgeBackIntoChain<Edge>(
  nodeCount: number,
  edgesOut: (node: number) => readonly Edge[],
  target: (edge: Edge) => number,
): { from: number; edge: Edge } | undefined {
  const state = new Uint8Array(nodeCount); // 0 unseen, 1 on the chain, 2 done
  const walk = (node: number): { from: number; edge: Edge } | undefined => {
    state[node] = 1;
    for (const edge of edgesOut(node)) {
      const to = target(edge);
      if (state[to] === 1) return { from: node, edge };
      if (state[to] === 0) {
        const found = walk(to);
        if (found) return found;
      }
    }
    state[node] = 2;
    return undefined;
  };
  for (let node = 0; node < nodeCount; node++) {
    if (state[node] !== 0) continue;
    const found = walk(node);
    if (found) return found;
  }
  return undefined;
}
