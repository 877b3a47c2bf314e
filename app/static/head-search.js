// Search across heads: every head of every layer ranked by the weight a query token gives a key
// token (or, with no query, by the mean weight every query gives the key).

/**
 * layers: [{position, layer, attention: H × L × S}] (one entry for the random model, layer null).
 * Returns [{position, layer, head, score, query, key}] from the highest score down.
 */
export function rankHeads(layers, { query, key }) {
  const ranked = [];
  for (const { position, layer, attention } of layers) {
    attention.forEach((matrix, head) => {
      ranked.push({ position, layer, head, query, key, score: scoreOf(matrix, query, key) });
    });
  }
  return ranked.sort((a, b) => b.score - a.score);
}

function scoreOf(matrix, query, key) {
  if (query !== null) return matrix[query]?.[key] ?? 0;
  const column = matrix.map((row) => row[key]).filter((w) => w !== null && w !== undefined);
  return column.length ? column.reduce((a, b) => a + b, 0) / column.length : 0;
}
