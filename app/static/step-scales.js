// The colour scale of each step. Weights run from 0 to their largest value. Signed values use a
// diverging scale, clipped at a high quantile of |value| when a few outliers would wash the rest
// out (BERT's layer inputs have a few dimensions near ±10 among values near ±1). The three score
// steps can share one scale, so that scaling and masking show as a change of colour.

import { makeScale } from "./colors.js";

/** The steps that hold scores: before the scale, after it, after the mask. */
export const SCORE_STEPS = ["scores", "scaled_scores", "masked_scores"];
const QUANTILE = 0.99;
const OUTLIER_RATIO = 2; // clip only where the largest |value| is over twice the quantile

function absoluteValues(values, into = []) {
  for (const v of values) {
    if (Array.isArray(v)) absoluteValues(v, into);
    else if (typeof v === "number" && Number.isFinite(v)) into.push(Math.abs(v));
  }
  return into;
}

/** The bound ±b of a diverging scale over `arrays`, and how many values lie beyond it. */
export function signedBound(arrays) {
  const abs = absoluteValues(arrays).sort((a, b) => a - b);
  const max = abs.at(-1) ?? 0;
  const q = abs[Math.floor(QUANTILE * (abs.length - 1))] ?? 0;
  if (q > 0 && max > OUTLIER_RATIO * q) {
    return { bound: q, clipped: abs.length - 1 - abs.lastIndexOf(q) };
  }
  return { bound: Math.max(max, 1e-9), clipped: 0 };
}

function largest(values) {
  // a loop, not Math.max(...): a long input's step holds more numbers than a call takes arguments
  return absoluteValues(values).reduce((a, b) => (b > a ? b : a), 1e-9);
}

/**
 * name -> {scale, clipped, shared} for every step in `steps`. `defs`: the step definitions
 * (name, sequential). shareScores: one scale for the SCORE_STEPS.
 */
export function stepScales(steps, defs, { shareScores }) {
  const scales = new Map();
  const scoreData = SCORE_STEPS.map((name) => steps?.[name]).filter((d) => d !== undefined && d !== null);
  const shared = shareScores && scoreData.length > 1 ? signedBound(scoreData) : null;
  for (const def of defs) {
    const data = steps?.[def.name];
    if (data === undefined || data === null) continue;
    if (def.sequential) {
      scales.set(def.name, { scale: makeScale("sequential", 0, largest(data)), clipped: 0, shared: false });
      continue;
    }
    const isScore = SCORE_STEPS.includes(def.name);
    const { bound, clipped } = isScore && shared ? shared : signedBound([data]);
    scales.set(def.name, {
      scale: makeScale("diverging", -bound, bound),
      clipped,
      shared: Boolean(isScore && shared),
    });
  }
  return scales;
}
