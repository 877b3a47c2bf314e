// Head types from a head's weights, each by a rule the page shows: where a head puts its weight
// (the token before, the token after, the first or last token) or how it spreads it.

const SHARE = 0.5; // a head is of a positional type when half its weight, on average, goes there
const BROAD = 0.8; // entropy at least this share of ln(keys): nearly even
const LOCAL = 1.5; // mean distance at most this many tokens

/** The rules in the order they are tried; the first that holds names the head. */
export function headTypeRules({ pretrained }) {
  const first = pretrained ? "[CLS] sink" : "first-token sink";
  const last = pretrained ? "[SEP] sink" : "last-token sink";
  return [
    { type: "previous-token", rule: `at least ${SHARE * 100}% of a query's weight, on average, on the token just before it`, holds: (s) => s.previous >= SHARE },
    { type: "next-token", rule: `at least ${SHARE * 100}% on the token just after it`, holds: (s) => s.next >= SHARE },
    { type: first, rule: `at least ${SHARE * 100}% on the first token${pretrained ? " ([CLS])" : ""}`, holds: (s) => s.first >= SHARE },
    { type: last, rule: `at least ${SHARE * 100}% on the last token${pretrained ? " ([SEP])" : ""}`, holds: (s) => s.last >= SHARE },
    { type: "broad", rule: `entropy at least ${BROAD * 100}% of ln(keys): the weight spread almost evenly`, holds: (s) => s.spread >= BROAD },
    { type: "local", rule: `mean distance at most ${LOCAL} tokens`, holds: (s) => s.distance <= LOCAL },
    { type: "mixed", rule: "none of the rules above", holds: () => true },
  ];
}

/** Mean shares on the previous, next, first and last key, normalised entropy, mean distance. */
export function headStats(matrix) {
  const totals = { previous: [0, 0], next: [0, 0], first: [0, 0], last: [0, 0] };
  const add = (name, value) => {
    if (value === null || value === undefined) return;
    totals[name][0] += value;
    totals[name][1] += 1;
  };
  let entropy = 0;
  let distance = 0;
  matrix.forEach((row, i) => {
    if (i > 0) add("previous", row[i - 1]);
    if (i < row.length - 1) add("next", row[i + 1]);
    add("first", row[0]);
    add("last", row.at(-1));
    row.forEach((w, j) => {
      if (w === null || w <= 0) return;
      entropy -= w * Math.log(w);
      distance += w * Math.abs(i - j);
    });
  });
  const rows = Math.max(1, matrix.length);
  const keys = Math.max(2, matrix[0]?.length ?? 2);
  const mean = ([sum, n]) => (n ? sum / n : 0);
  return {
    previous: mean(totals.previous),
    next: mean(totals.next),
    first: mean(totals.first),
    last: mean(totals.last),
    spread: entropy / rows / Math.log(keys),
    distance: distance / rows,
  };
}

/** {type, rule} of the head with weights `matrix` (queries × keys). */
export function headType(matrix, { pretrained = false } = {}) {
  const stats = headStats(matrix);
  const { type, rule } = headTypeRules({ pretrained }).find((r) => r.holds(stats));
  return { type, rule };
}
