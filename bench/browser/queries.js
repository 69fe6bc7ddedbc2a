// The query texts both encoders embed in bench/browser_bench.mjs, keyed by their token count with
// [CLS] and [SEP] (all-MiniLM-L6-v2's tokenizer): prefixes of one long query.
export const QUERIES = {
  4: 'a long',
  8: 'a long, slow and beautifully',
  16: 'a long, slow and beautifully shot drama about two lighthouse keepers on a',
  32: 'a long, slow and beautifully shot drama about two lighthouse keepers on a remote island who slowly lose their grip on reality as a storm cuts them off from',
  64: 'a long, slow and beautifully shot drama about two lighthouse keepers on a remote island who slowly lose their grip on reality as a storm cuts them off from the mainland for weeks, while old secrets, strange noises at night and a cargo of whisky wash up on the rocks below the old stone tower in the dark winter',
  128: 'a long, slow and beautifully shot drama about two lighthouse keepers on a remote island who slowly lose their grip on reality as a storm cuts them off from the mainland for weeks, while old secrets, strange noises at night and a cargo of whisky wash up on the rocks below the old stone tower in the dark winter, and when the relief boat finally arrives in spring the crew finds the lamp still burning, the logbook filled with pages of maps of places that do not exist, and no trace of either man except a single wet boot on the stairs leading up to the lantern room at the top, so the young officer who wrote the',
};
export const REPEATS = 30;
export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
