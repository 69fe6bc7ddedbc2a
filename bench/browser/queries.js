// The query texts both encoders embed in bench/browser_bench.mjs (token counts with [CLS] and
// [SEP], all-MiniLM-L6-v2's tokenizer).
export const QUERIES = {
  short: 'a quiet film about lighthouse keepers', // 8 tokens
  long: 'a long, slow and beautifully shot drama about two lighthouse keepers on a remote island who slowly lose their grip on reality as a storm cuts them off from the mainland for weeks, while old secrets, strange noises at night and a cargo of whisky wash up on the rocks below the old stone tower in the dark winter', // 64 tokens
};
export const REPEATS = 50;
export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
